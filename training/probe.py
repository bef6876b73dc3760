"""Linear probes of frozen vision features: can the decoder read an object's size class, colour, class and place (the
third of the image, across and down, that holds its centre) from the patch at its box centre? `train.py --dump-features F.npy` writes the features of a pack's images; the probes train a
logistic regression on the objects of the first --train images and report accuracy on the rest.

    /usr/bin/python3 training/probe.py --features F.npy --contexts PACK/contexts.jsonl --train 15000

`--projector CKPT` probes what the decoder reads instead: the features through that checkpoint's projector. A
least-squares probe of the box centre (padded frame, 0-1) is reported beside the classifiers, and the box bound: the
centre read by least squares from the 3x3 patches around the centre patch (given the right patch), and the share of
objects whose true box, moved by that probe's error, still meets the truth at IoU >= 0.5, by size class. A decoder
that wrote every box's size right and read the place no better than a linear map of what it is given would score
that in grounding. `--pca K` adds the bound after the best K-dimensional linear map of each patch (principal
components of the training objects' centre patches): what K numbers per patch could carry at best, linearly.
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
    ap.add_argument('--pca', default='', help='widths (,) of principal-component maps to report the box bound after, e.g. "16,32"')
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
    x, near, cell, centre, extent, labels, image = [], [], [], [], [], {'size class': [], 'colour': [], 'class': [], 'column third': [], 'row third': []}, []
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
            near.append(neighbourhood(feats[i].reshape(grid, grid, -1), row, col))
            cell.append([col, row])
            centre.append([((x1 + x2) / 2 + left) / side, ((y1 + y2) / 2 + top) / side])
            extent.append([(x2 - x1) / side, (y2 - y1) / side])
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
    near, extent, sizes = np.stack(near), np.array(extent), np.array(labels['size class'])
    # the place within the centre patch, in patches: the decoder knows which patch a row is (its position)
    offset = centre.numpy() * grid - np.array(cell)
    train, test = train.numpy(), test.numpy()
    print('box bound (3x3 patches, least squares): ' + box_bound(near, offset, grid, extent, sizes, train, test))
    for k in [int(n) for n in args.pca.split(',') if n]:
        mid = near[train][:, near.shape[1] // 2]
        mean = mid.mean(0)
        basis = np.linalg.svd(mid - mean, full_matrices=False)[2][:k]
        mapped = (near - mean) @ basis.T
        print(f'  after the best {k}-wide linear map: ' + box_bound(mapped, offset, grid, extent, sizes, train, test))


def neighbourhood(patches, row, col):
    """The 3x3 patches around (row, col), zeros outside the grid: [9, dim]."""
    padded = np.pad(patches, ((1, 1), (1, 1), (0, 0)))
    return padded[row:row + 3, col:col + 3].reshape(9, -1)


def box_bound(near, offset, grid, extent, sizes, train, test):
    """Least squares from the flattened neighbourhood to the centre's place within its patch; the IoU of the true
    box with itself moved by the error, as the share >= 0.5 by size class and in all."""
    x = np.concatenate([near.reshape(len(near), -1), np.ones((len(near), 1), np.float32)], 1).astype(np.float64)
    w = np.linalg.lstsq(x[train], offset[train], rcond=None)[0]
    d = np.abs(x[test] @ w - offset[test]) / grid
    wh = extent[test]
    inter = np.clip(wh[:, 0] - d[:, 0], 0, None) * np.clip(wh[:, 1] - d[:, 1], 0, None)
    hit = inter / (2 * wh[:, 0] * wh[:, 1] - inter) >= 0.5
    by = ', '.join(f'{s} {hit[sizes[test] == k].mean() * 100:.1f} %' for k, s in enumerate(SIZES))
    return f'{hit.mean() * 100:.1f} % of boxes at IoU >= 0.5 ({by}); centre error median {np.median(np.hypot(*d.T)):.4f}'


if __name__ == '__main__':
    main()
