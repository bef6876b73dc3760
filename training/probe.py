"""Linear probes of frozen vision features: can the decoder read an object's size class, colour, class and place (the
third of the image, across and down, that holds its centre) from the patch at its box centre? `train.py --dump-features F.npy` writes the features of a pack's images; the probes train a
logistic regression on the objects of the first --train images and report accuracy on the rest.

    /usr/bin/python3 training/probe.py --features F.npy --contexts PACK/contexts.jsonl --train 15000

`--projector CKPT` probes what the decoder reads instead: the features through that checkpoint's projector. A
least-squares probe of the box centre (padded frame, 0-1) is reported beside the classifiers.
"""
import argparse
import json

import numpy as np
import torch

from train import SIZES, Projector, image_thirds, read_safetensors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--features', required=True, help='.npy from train.py --dump-features: [images, patches, dim]')
    ap.add_argument('--contexts', required=True, help="the pack's contexts.jsonl (every object's class, colour, size, box)")
    ap.add_argument('--train', type=int, required=True, help='objects of images before this index train the probes; the rest test them')
    ap.add_argument('--steps', type=int, default=300)
    ap.add_argument('--projector', help='a checkpoint (.safetensors): probe its projector\'s output instead of the features')
    args = ap.parse_args()
    torch.set_num_threads(1)
    feats = np.load(args.features).astype(np.float32)
    if args.projector:
        weights = read_safetensors(args.projector, 'multi_modal_projector.')
        projector = Projector(*weights['linear_1.weight'].shape[::-1])
        projector.load_state_dict(weights)
        with torch.no_grad():
            feats = projector(torch.from_numpy(feats)).numpy()
    grid = int(round(feats.shape[1] ** 0.5))
    ctxs = [json.loads(line) for line in open(args.contexts)]
    colours = sorted({o['colour'] for c in ctxs for o in c.get('objects', [])})
    classes = sorted({o['class'] for c in ctxs for o in c.get('objects', [])})
    x, centre, labels, image = [], [], {'size class': [], 'colour': [], 'class': [], 'column third': [], 'row third': []}, []
    for i, c in enumerate(ctxs):
        side = max(c['width'], c['height'])
        left, top = (side - c['width']) // 2, (side - c['height']) // 2
        for o in c.get('objects', []):
            if o.get('size') not in SIZES:
                continue  # diagram boxes have no size class
            x1, y1, x2, y2 = o['box']
            col = min(grid - 1, int(((x1 + x2) / 2 + left) / side * grid))
            row = min(grid - 1, int(((y1 + y2) / 2 + top) / side * grid))
            x.append(feats[i, row * grid + col])
            centre.append([((x1 + x2) / 2 + left) / side, ((y1 + y2) / 2 + top) / side])
            labels['size class'].append(SIZES.index(o['size']))
            labels['colour'].append(colours.index(o['colour']))
            labels['class'].append(classes.index(o['class']))
            column, row_third = image_thirds(o['box'], c['width'], c['height'])
            labels['column third'].append(column)
            labels['row third'].append(row_third)
            image.append(i)
    x = torch.tensor(np.stack(x))
    x = (x - x.mean(0)) / (x.std(0) + 1e-5)
    train = torch.tensor(np.array(image) < args.train)
    test = ~train
    for name, y in labels.items():
        y = torch.tensor(y)
        probe = torch.nn.Linear(x.shape[1], int(y.max()) + 1)
        opt = torch.optim.Adam(probe.parameters(), 1e-2)
        for _ in range(args.steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(probe(x[train]), y[train]).backward()
            opt.step()
        acc = (probe(x[test]).argmax(1) == y[test]).float().mean().item()
        chance = torch.bincount(y[test]).max().item() / int(test.sum())
        print(f'{name}: {acc * 100:.1f} % of {int(test.sum())} held-out objects (chance {chance * 100:.1f} %)')
        if name in ('class', 'colour'):
            # by size class: small shapes (a tenth of the shorter side) are the ones a patch of the grid splits
            right = probe(x[test]).argmax(1) == y[test]
            sizes = torch.tensor(labels['size class'])[test]
            print('  by size: ' + ', '.join(f'{s} {right[sizes == k].float().mean().item() * 100:.1f} %' for k, s in enumerate(SIZES)))
    centre = torch.tensor(centre)
    xb = torch.cat([x, torch.ones(len(x), 1)], 1)
    w = torch.linalg.lstsq(xb[train], centre[train]).solution
    err = (xb[test] @ w - centre[test]).abs().mean().item()
    print(f'box centre: mean error {err:.3f} of the side (the training mean: {(centre[train].mean(0) - centre[test]).abs().mean().item():.3f})')


if __name__ == '__main__':
    main()
