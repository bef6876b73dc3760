#!/usr/bin/python3
"""Make the sample images (media/samples/) and the PIL reference outputs (test/reference/data/).

Run once by hand with Debian's Pillow (apt-get install -y python3-pil python3-numpy):
    /usr/bin/python3 test/reference/make_reference.py
CI never runs this: the unit tests only read the committed PNG/JSON outputs.

The reference steps are those of the Python code the models were trained with, written here with
PIL itself (no transformers needed):
  crop   CLIPImageProcessor (llava-1.5-hf): resize shortest edge to S (long side int(S*long/short)),
         Image.resize(BICUBIC), centre crop with top = (h - ch) // 2, left = (w - cw) // 2
  resize SiglipImageProcessor (nanoLLaVA): Image.resize((W, H), BICUBIC)
  pad    original LLaVA-1.5 expand2square: paste centred on a square of side max(w, h) filled with
         tuple(int(m * 255) for m in image_mean), offset ((side - w) // 2, (side - h) // 2), then crop path
Transparent images are composited over WHITE first (Image.alpha_composite on a white canvas). This is
our deliberate choice, not PIL's: convert('RGB') would drop alpha and turn a black-on-transparent
diagram into black on black; training images had no alpha, so there is nothing to be faithful to.

Outputs are u8 PNGs (lossless); the tests normalise them themselves.
"""
import json
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLES = os.path.join(ROOT, "media", "samples")
OUT = os.path.join(ROOT, "test", "reference", "data")

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
FONT = ImageFont.load_default()  # Pillow's built-in bitmap font: ~11 px, the "small text" case


# ---------------------------------------------------------------- samples


def make_screenshot(path):
    """1600x900 IDE-like screenshot: small text, 1 px lines, flat UI colours."""
    w, h = 1600, 900
    im = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, w - 1, 29], fill=(60, 60, 60))  # title bar
    d.text((10, 9), "main.ts - llava-vscode - Visual Studio Code", fill=(230, 230, 230), font=FONT)
    d.rectangle([0, 30, 47, h - 1], fill=(44, 44, 44))  # activity bar
    for i in range(6):
        d.rectangle([12, 50 + i * 48, 35, 73 + i * 48], outline=(200, 200, 200))
    d.rectangle([48, 30, 299, h - 1], fill=(243, 243, 243))  # explorer
    for i in range(40):
        d.text((60 + (i % 3) * 8, 40 + i * 20), f"src/engine/file_{i:02d}.ts", fill=(30, 30, 30), font=FONT)
    d.line([300, 30, 300, h - 1], fill=(200, 200, 200))
    rng = np.random.default_rng(1)
    words = ["const", "let", "await", "return", "image", "pixels", "resize(", ")", "=>", "{", "}", "3", "0.5"]
    colours = [(0, 0, 255), (163, 21, 21), (0, 128, 0), (121, 94, 38), (0, 0, 0)]
    for row in range(55):
        y = 40 + row * 15
        d.text((310, y), f"{row + 1:4d}", fill=(140, 140, 140), font=FONT)
        x = 350 + int(rng.integers(0, 6)) * 14
        for _ in range(int(rng.integers(2, 12))):
            word = words[int(rng.integers(0, len(words)))]
            d.text((x, y), word, fill=colours[int(rng.integers(0, len(colours)))], font=FONT)
            x += 7 * len(word) + 7
    for x in range(1200, 1580, 10):  # a grid of 1 px lines: aliasing shows up here first
        d.line([x, 60, x, 400], fill=(0, 0, 0))
    for y in range(60, 401, 10):
        d.line([1200, y, 1579, y], fill=(0, 0, 0))
    d.rectangle([1200, 450, 1579, 640], outline=(0, 120, 212), width=2)
    d.text((1210, 460), "Ask about this image", fill=(0, 120, 212), font=FONT)
    d.rectangle([0, h - 22, w - 1, h - 1], fill=(0, 122, 204))  # status bar
    d.text((10, h - 16), "Ln 42, Col 7   Spaces: 2   UTF-8   LF   TypeScript", fill=(255, 255, 255), font=FONT)
    im.save(path, optimize=True)


def make_photo(path):
    """1024x768 photo-like JPEG: smooth gradients, soft shapes, fine noise texture."""
    w, h = 1024, 768
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 120 + 100 * np.sin(xx / 170.0) * np.cos(yy / 230.0)
    g = 90 + 80 * (yy / h) + 40 * np.sin((xx + yy) / 90.0)
    b = 160 - 90 * (xx / w) + 30 * np.cos(yy / 60.0)
    img = np.stack([r, g, b], axis=-1)
    disc = ((xx - 700) ** 2 + (yy - 300) ** 2) < 140**2  # a "sun"
    img[disc] = img[disc] * 0.3 + np.array([250, 220, 120]) * 0.7
    rng = np.random.default_rng(7)
    img += rng.normal(0, 5, size=img.shape)  # sensor-like texture
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(path, quality=80)


def make_tall(path):
    """500x1400 phone-screen-like PNG: headings, lines of text, bars."""
    w, h = 500, 1400
    im = Image.new("RGB", (w, h), (250, 250, 252))
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, w - 1, 59], fill=(25, 118, 210))
    d.text((16, 24), "Settings", fill=(255, 255, 255), font=FONT)
    for i in range(26):
        y = 80 + i * 50
        d.rectangle([16, y, w - 17, y + 40], outline=(220, 220, 225))
        d.ellipse([24, y + 8, 48, y + 32], fill=((i * 37) % 256, (i * 91) % 256, 180))
        d.text((60, y + 8), f"Option number {i}: enable feature {chr(65 + i)}", fill=(20, 20, 20), font=FONT)
        d.text((60, y + 22), "secondary text in grey", fill=(120, 120, 120), font=FONT)
        d.rectangle([w - 80, y + 14, w - 80 + (i * 13) % 50 + 10, y + 26], fill=(76, 175, 80))
    im.save(path, optimize=True)


def make_diagram(path):
    """800x500 black-on-transparent diagram: boxes, arrows, labels (RGBA, alpha 0 background)."""
    w, h = 800, 500
    im = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    black = (0, 0, 0, 255)
    boxes = [(60, 60, 240, 140, "webview"), (320, 60, 500, 140, "extension host"),
             (580, 60, 760, 140, "engine process"), (580, 320, 760, 400, "onnxruntime")]
    for x0, y0, x1, y1, label in boxes:
        d.rectangle([x0, y0, x1, y1], outline=black, width=3)
        d.text((x0 + 12, (y0 + y1) // 2 - 5), label, fill=black, font=FONT)

    def arrow(x0, y0, x1, y1):
        d.line([x0, y0, x1, y1], fill=black, width=3)
        v = np.array([x1 - x0, y1 - y0], dtype=np.float64)
        v /= np.linalg.norm(v)
        n = np.array([-v[1], v[0]])
        tip = np.array([x1, y1])
        pts = [tuple(tip), tuple(tip - 14 * v + 7 * n), tuple(tip - 14 * v - 7 * n)]
        d.polygon([(float(a), float(b)) for a, b in pts], fill=black)

    arrow(240, 100, 318, 100)
    arrow(500, 100, 578, 100)
    arrow(670, 140, 670, 318)
    d.text((250, 80), "postMessage", fill=black, font=FONT)
    d.text((510, 80), "IPC", fill=black, font=FONT)
    d.text((680, 220), "run()", fill=black, font=FONT)
    d.ellipse([100, 300, 300, 440], outline=(200, 30, 30, 255), width=3)  # one colour, semi-transparent fill
    d.ellipse([103, 303, 297, 437], fill=(200, 30, 30, 96))
    d.text((150, 365), "cache (KV)", fill=black, font=FONT)
    im.save(path, optimize=True)


def make_exif_rotated(path):
    """JPEG stored sideways with EXIF Orientation 6: upright it is 240x360 with a red top-left block."""
    upright = Image.new("RGB", (240, 360), (255, 255, 255))
    d = ImageDraw.Draw(upright)
    d.rectangle([0, 0, 79, 79], fill=(255, 0, 0))  # top-left: red
    d.rectangle([0, 300, 239, 359], fill=(0, 0, 255))  # bottom band: blue
    d.text((90, 30), "UP", fill=(0, 0, 0), font=FONT)
    # Orientation 6 means "rotate 90 degrees clockwise to display", so store it rotated counter-clockwise.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, quality=92, exif=exif.tobytes())


SAMPLE_MAKERS = {
    "screenshot.png": make_screenshot,
    "photo.jpg": make_photo,
    "tall.png": make_tall,
    "diagram.png": make_diagram,
    "exif_rotated.jpg": make_exif_rotated,
}


# ---------------------------------------------------------------- reference steps (PIL)


def load_rgb(path):
    im = Image.open(path)
    im.load()
    if im.mode in ("RGBA", "LA", "P"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def shortest_edge_size(w, h, s):
    """transformers get_resize_output_image_size(default_to_square=False): (width, height)."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = s, int(s * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def crop_path(im, shortest, crop_w, crop_h):
    nw, nh = shortest_edge_size(im.width, im.height, shortest)
    resized = im.resize((nw, nh), Image.BICUBIC)
    top = (nh - crop_h) // 2
    left = (nw - crop_w) // 2
    assert top >= 0 and left >= 0
    return resized.crop((left, top, left + crop_w, top + crop_h)), {
        "resizedWidth": nw, "resizedHeight": nh, "cropLeft": left, "cropTop": top}


def expand2square(im, background):
    w, h = im.size
    if w == h:
        return im, 0, 0
    side = max(w, h)
    result = Image.new(im.mode, (side, side), background)
    x, y = (side - w) // 2, (side - h) // 2
    result.paste(im, (x, y))
    return result, x, y


def main():
    os.makedirs(SAMPLES, exist_ok=True)
    os.makedirs(OUT, exist_ok=True)
    for name, make in SAMPLE_MAKERS.items():
        make(os.path.join(SAMPLES, name))

    cases = []
    pad_colour = tuple(int(m * 255) for m in CLIP_MEAN)
    for name in ["screenshot.png", "photo.jpg", "tall.png", "diagram.png"]:
        im = load_rgb(os.path.join(SAMPLES, name))
        stem = name.split(".")[0]

        out, info = crop_path(im, 336, 336, 336)
        out.save(os.path.join(OUT, f"{stem}.crop336.png"))
        cases.append({"image": name, "mode": "crop", "file": f"{stem}.crop336.png", "shortestEdge": 336,
                      "width": 336, "height": 336, "originalWidth": im.width, "originalHeight": im.height, **info})

        out = im.resize((384, 384), Image.BICUBIC)
        out.save(os.path.join(OUT, f"{stem}.resize384.png"))
        cases.append({"image": name, "mode": "resize", "file": f"{stem}.resize384.png", "width": 384,
                      "height": 384, "originalWidth": im.width, "originalHeight": im.height})

        sq, px, py = expand2square(im, pad_colour)
        out, info = crop_path(sq, 336, 336, 336)
        out.save(os.path.join(OUT, f"{stem}.pad336.png"))
        cases.append({"image": name, "mode": "pad", "file": f"{stem}.pad336.png", "shortestEdge": 336,
                      "width": 336, "height": 336, "originalWidth": im.width, "originalHeight": im.height,
                      "padColor": list(pad_colour), "padLeft": px, "padTop": py, "side": sq.width, **info})

    # Every Pillow filter, shrinking and enlarging, on a small region (keeps the files small).
    filters = []
    region = load_rgb(os.path.join(SAMPLES, "screenshot.png")).crop((1120, 300, 1420, 500))  # 300x200
    for fname, fid in [("nearest", 0), ("lanczos", 1), ("bilinear", 2), ("bicubic", 3), ("box", 4), ("hamming", 5)]:
        for size in [(97, 61), (411, 157)]:
            f = f"filter.{fname}.{size[0]}x{size[1]}.png"
            region.resize(size, fid).save(os.path.join(OUT, f))
            filters.append({"file": f, "resample": fid, "width": size[0], "height": size[1]})
    region.save(os.path.join(OUT, "filter.source.png"))

    exif = Image.open(os.path.join(SAMPLES, "exif_rotated.jpg"))
    from PIL import ImageOps
    upright = ImageOps.exif_transpose(exif)

    meta = {
        "pillow": Image.__version__ if hasattr(Image, "__version__") else __import__("PIL").__version__,
        "note": "made by test/reference/make_reference.py; transparent images composited over white first",
        "clipMean": list(CLIP_MEAN),
        "cases": cases,
        "filterSource": {"file": "filter.source.png", "image": "screenshot.png", "box": [1120, 300, 1420, 500]},
        "filters": filters,
        "exifRotated": {"image": "exif_rotated.jpg", "orientation": 6, "storedWidth": exif.width,
                        "storedHeight": exif.height, "uprightWidth": upright.width, "uprightHeight": upright.height},
    }
    with open(os.path.join(OUT, "reference.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
