"""The fp32 graphs of a folder `llava convert` wrote, read back into the llava-hf safetensors `train.py --init` starts
from, so that a phase can be tried from the shipped model's own weights without re-running the whole recipe:

    /usr/bin/python3 training/unconvert.py models/builtin /tmp/builtin.safetensors

The converter stores each linear layer's weight transposed ([in, out], as ONNX exports do), the vocabulary tables of
a small model sparse (its non-zero values and their indices), and leaves out what the features never reach (the
tower's layers after `vision_feature_layer` and its post_layernorm). This reads the protobuf wire format directly
(no `onnx` package), undoes the first two, and adds the third as zeros (ones for norm scales) so that train.py can
load a whole tower; those parts change nothing the model computes. Check: `llava convert` of the result gives the
folder's graphs back byte for byte (training/README.md, thirty-third session).
"""
import json
import os
import sys

import numpy as np

from train import write_safetensors

GRAPHS = ('vision_encoder.onnx', 'embed_tokens.onnx', 'decoder_model_merged.onnx')
WEIGHTS = ('model.', 'lm_head.', 'vision_tower.', 'multi_modal_projector.')  # llava-hf names, text part unprefixed
NUMPY = {1: '<f4', 2: 'u1', 7: '<i8', 10: '<f2'}  # TensorProto.DataType: FLOAT, UINT8, INT64, FLOAT16


def varint(buf, i):
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def fields(buf, lo, hi):
    """(field number, wire type, value) of one message: varints as ints, fixed widths skipped, lengths as (lo, hi)."""
    i = lo
    while i < hi:
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = None, i + 8
        elif wire == 5:
            value, i = None, i + 4
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = (i, i + n), i + n
        else:
            raise ValueError(f'wire type {wire} at byte {i}')
        yield number, wire, value


def int64s(buf, wire, value):
    """A repeated int64 field's values, packed or not."""
    if wire == 0:
        return [value]
    out, i = [], value[0]
    while i < value[1]:
        v, i = varint(buf, i)
        out.append(v)
    return out


def tensor(buf, lo, hi):
    """TensorProto -> (name, array): dims 1, data_type 2, float_data 4, name 8, raw_data 9."""
    dims, name, dtype, raw, floats = [], None, None, None, []
    for number, wire, value in fields(buf, lo, hi):
        if number == 1:
            dims += int64s(buf, wire, value)
        elif number == 2:
            dtype = value
        elif number == 4:
            floats.append(np.frombuffer(buf[value[0]:value[1]], '<f4'))
        elif number == 8:
            name = bytes(buf[value[0]:value[1]]).decode()
        elif number == 9:
            raw = buf[value[0]:value[1]]
    if dtype not in NUMPY:
        raise ValueError(f'{name}: data type {dtype}')
    data = np.frombuffer(raw, NUMPY[dtype]) if raw is not None else np.concatenate(floats) if floats else np.zeros(0, '<f4')
    if data.size != int(np.prod(dims)):
        raise SystemExit(f'{name}: its values are not in the file (external data, as in graphs over 2 GB): not read here')
    return name, data.reshape(dims), dtype


def float_initializers(path):
    """Every float32 initializer of an ONNX file, sparse ones made dense: GraphProto.initializer 5 and
    sparse_initializer 15 (SparseTensorProto: values 1, indices 2, dims 3) of ModelProto.graph 7."""
    buf = memoryview(open(path, 'rb').read())
    out = {}
    for number, _, graph in fields(buf, 0, len(buf)):
        if number != 7:
            continue
        for field, _, value in fields(buf, *graph):
            if field == 5:
                name, data, dtype = tensor(buf, *value)
                if dtype == 1:
                    out[name] = data
            elif field == 15:
                values = indices = None
                dims = []
                for part, wire, v in fields(buf, *value):
                    if part == 1:
                        values = tensor(buf, *v)
                    elif part == 2:
                        indices = tensor(buf, *v)[1]
                    elif part == 3:
                        dims += int64s(buf, wire, v)
                dense = np.zeros(int(np.prod(dims)), '<f4')
                dense[indices] = values[1]
                out[values[0]] = dense.reshape(dims)
    return out


def unconvert(folder):
    found = {}
    for graph in GRAPHS:
        path = os.path.join(folder, 'onnx', graph)
        if not os.path.exists(path):
            raise SystemExit(f'{path}: missing (the fp32 graphs of a `llava convert --dtype fp32` folder)')
        found.update(float_initializers(path))
    out = {}
    for name, data in found.items():
        if not name.startswith(WEIGHTS):
            continue  # the converter's own constants ("/const_f32_5": rotary tables, scalars), not weights
        # linear layers are stored [in, out]; tables (embeddings, position rows) as they are
        if data.ndim == 2 and name.endswith('.weight') and 'embed' not in name:
            data = data.T
        text = name.startswith('model.') or name.startswith('lm_head.')
        out[('language_model.' + name) if text else name] = np.ascontiguousarray(data, dtype='<f4')
    vision = json.load(open(os.path.join(folder, 'config.json')))['vision_config']
    tower = 'vision_tower.vision_model.'
    first = [n for n in out if n.startswith(tower + 'encoder.layers.0.')]
    for layer in range(vision['num_hidden_layers']):
        for name in first:
            other = name.replace('layers.0.', f'layers.{layer}.')
            if other not in out:
                scale = name.endswith('norm1.weight') or name.endswith('norm2.weight')
                out[other] = np.ones_like(out[name]) if scale else np.zeros_like(out[name])
    out.setdefault(tower + 'post_layernorm.weight', np.ones(vision['hidden_size'], '<f4'))
    out.setdefault(tower + 'post_layernorm.bias', np.zeros(vision['hidden_size'], '<f4'))
    return out


def main():
    if len(sys.argv) != 3:
        raise SystemExit('usage: unconvert.py MODEL_FOLDER OUT.safetensors')
    tensors = unconvert(sys.argv[1])
    write_safetensors(sys.argv[2], tensors)
    print(f'{len(tensors)} tensors, {sum(t.size for t in tensors.values()):,} values -> {sys.argv[2]}')


if __name__ == '__main__':
    main()
