"""Colour answers of a `llava eval --json` run, split by the phrase that names the object: a bare shape ("What colour
is the circle?"), a size ("the small circle") or a place ("the hexagon in the bottom left").

    /usr/bin/python3 training/phrases.py EVAL.json HELDOUT/short_answer.jsonl
"""
import collections
import json
import re
import sys

SHAPES = ('circle', 'square', 'triangle', 'star', 'hexagon')


def main():
    items = json.load(open(sys.argv[1]))['short']['items']
    questions = {q['question_id']: q for q in map(json.loads, open(sys.argv[2]))}
    total, right = collections.Counter(), collections.Counter()
    for item in items:
        if item['category'] != 'colour':
            continue
        m = re.match(r'What colour is the (.*)\?', questions[item['id']]['text'].split('\n')[0])
        phrase = m.group(1) if m else ''
        kind = 'bare' if phrase in SHAPES else 'size' if phrase.split(' ')[0] in ('small', 'medium', 'large') else 'place'
        total[kind] += 1
        right[kind] += bool(item['correct'])
    for kind in ('bare', 'size', 'place'):
        if total[kind]:
            print(f'{kind}: {right[kind]} of {total[kind]} ({100 * right[kind] / total[kind]:.1f} %)')
    print(f'all: {sum(right.values())} of {sum(total.values())} ({100 * sum(right.values()) / max(1, sum(total.values())):.1f} %)')


if __name__ == '__main__':
    main()
