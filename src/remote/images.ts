// What the host needs to know about an image file without decoding it (no sharp outside the engine):
// its type (for the data: URL a remote server gets) and its displayed size (after EXIF orientation),
// read from the header. A file whose header is not a known image is refused before any request.

import { ImageDecodeError } from '../core';

export type ImageMime = 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp' | 'image/bmp' | 'image/tiff' | 'image/avif' | 'image/svg+xml';

export function sniffImageType(b: Uint8Array): ImageMime | undefined {
  const ascii = (at: number, s: string) => s.split('').every((c, i) => b[at + i] === c.charCodeAt(0));
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, 'PNG')) return 'image/png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (ascii(0, 'GIF8')) return 'image/gif';
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'image/webp';
  if (ascii(0, 'BM')) return 'image/bmp';
  if (ascii(0, 'II*\0') || ascii(0, 'MM\0*')) return 'image/tiff';
  if (ascii(4, 'ftypavif') || ascii(4, 'ftypavis')) return 'image/avif';
  const head = Buffer.from(b.subarray(0, 256)).toString('utf8').trimStart();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return 'image/svg+xml';
  return undefined;
}

export function toDataUrl(bytes: Uint8Array, name: string): string {
  const mime = sniffImageType(bytes);
  if (!mime) throw new ImageDecodeError(name, 'not a recognised image format');
  return `data:${mime};base64,${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}`;
}

/** Width and height as displayed (JPEG EXIF orientations 5-8 swap them); undefined when the header is not understood. */
export function imageSize(b: Uint8Array): { width: number; height: number } | undefined {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const type = sniffImageType(b);
  try {
    if (type === 'image/png') return { width: dv.getUint32(16), height: dv.getUint32(20) };
    if (type === 'image/gif') return { width: dv.getUint16(6, true), height: dv.getUint16(8, true) };
    if (type === 'image/bmp') return { width: dv.getInt32(18, true), height: Math.abs(dv.getInt32(22, true)) };
    if (type === 'image/webp') return webpSize(dv);
    if (type === 'image/jpeg') return jpegSize(b, dv);
  } catch {
    return undefined; // a header cut short
  }
  return undefined;
}

function webpSize(dv: DataView): { width: number; height: number } | undefined {
  const chunk = String.fromCharCode(dv.getUint8(12), dv.getUint8(13), dv.getUint8(14), dv.getUint8(15));
  if (chunk === 'VP8X') return { width: 1 + (dv.getUint32(24, true) & 0xffffff), height: 1 + (dv.getUint32(27, true) & 0xffffff) };
  if (chunk === 'VP8 ') return { width: dv.getUint16(26, true) & 0x3fff, height: dv.getUint16(28, true) & 0x3fff };
  if (chunk === 'VP8L') {
    const bits = dv.getUint32(21, true);
    return { width: 1 + (bits & 0x3fff), height: 1 + ((bits >> 14) & 0x3fff) };
  }
  return undefined;
}

function jpegSize(b: Uint8Array, dv: DataView): { width: number; height: number } | undefined {
  let orientation = 1;
  for (let at = 2; at + 9 < b.length; ) {
    if (b[at] !== 0xff) return undefined;
    const marker = b[at + 1];
    const length = dv.getUint16(at + 2);
    if (marker === 0xe1 && String.fromCharCode(...b.subarray(at + 4, at + 8)) === 'Exif') orientation = exifOrientation(dv, at + 10) ?? 1;
    // SOF0..SOF15 except DHT (c4), JPG (c8) and DAC (cc)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const height = dv.getUint16(at + 5);
      const width = dv.getUint16(at + 7);
      return orientation >= 5 && orientation <= 8 ? { width: height, height: width } : { width, height };
    }
    at += 2 + length;
  }
  return undefined;
}

/** The Orientation tag (0x0112) of IFD0 of the TIFF structure at `tiff`. */
function exifOrientation(dv: DataView, tiff: number): number | undefined {
  const little = dv.getUint16(tiff) === 0x4949;
  const ifd = tiff + dv.getUint32(tiff + 4, little);
  const count = dv.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (dv.getUint16(entry, little) === 0x0112) return dv.getUint16(entry + 8, little);
  }
  return undefined;
}
