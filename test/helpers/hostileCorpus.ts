// A workspace of hostile files, generated (nothing binary is committed): what a user's folder can hold
// and what issue 14's attack used. `makeHostileCorpus(dir)` writes `dir/ws` (the workspace) and
// `dir/outside` (which nothing may read: its "secret" is a FIFO, so a single open of it hangs and a
// read shows as a timeout) and returns each file with what must happen to it.

import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, ftruncateSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';

/** 'ok': decoded; 'refused': not opened at all (FILE_REFUSED); 'error': opened, then a typed one-line error */
export type Expect = 'ok' | 'refused' | 'error' | 'ok-or-error';

export interface HostileFile {
  /** relative to ws/ */
  name: string;
  expect: Expect;
  /** what it is */
  kind: string;
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A PNG whose header claims width x height with a tiny (wrong-sized) body: a bomb by its header. */
export function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Rewrites the EXIF orientation value in a JPEG made by sharp with orientation `from` to `to` (9: invalid). */
function patchOrientation(jpeg: Buffer, to: number): Buffer {
  const out = Buffer.from(jpeg);
  // tag 0x0112, type SHORT (3), count 1: value follows; both byte orders
  for (let i = 0; i < out.length - 10; i++) {
    if (out[i] === 0x01 && out[i + 1] === 0x12 && out[i + 2] === 0x00 && out[i + 3] === 0x03) out.writeUInt16BE(to, i + 8);
    else if (out[i] === 0x12 && out[i + 1] === 0x01 && out[i + 2] === 0x03 && out[i + 3] === 0x00) out.writeUInt16LE(to, i + 8);
  }
  return out;
}

export async function makeHostileCorpus(dir: string): Promise<{ ws: string; outside: string; files: HostileFile[] }> {
  const ws = path.join(dir, 'ws');
  const outside = path.join(dir, 'outside');
  mkdirSync(path.join(ws, 'sub'), { recursive: true });
  mkdirSync(outside, { recursive: true });
  const files: HostileFile[] = [];
  const add = (name: string, expect: Expect, kind: string, data?: Buffer | string) => {
    if (data !== undefined) writeFileSync(path.join(ws, name), data);
    files.push({ name, expect, kind });
  };
  const rgb = (w: number, h: number) => {
    const px = Buffer.alloc(w * h * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 13 + (i >> 5)) & 255;
    return sharp(px, { raw: { width: w, height: h, channels: 3 } });
  };

  // ---- good images (the job must still caption these) ------------------------------------
  const png = await rgb(40, 30).png().toBuffer();
  const jpg = await rgb(40, 30).jpeg().toBuffer();
  add('good.png', 'ok', 'PNG', png);
  add('good.jpg', 'ok', 'JPEG', jpg);
  add('good.webp', 'ok', 'WebP', await rgb(33, 17).webp().toBuffer());
  add('good.gif', 'ok', 'GIF', await rgb(20, 20).gif().toBuffer());
  add('good.tiff', 'ok', 'TIFF', await rgb(20, 24).tiff().toBuffer());
  add('sub/nested.png', 'ok', 'PNG in a sub-folder', png);
  add('UPPER.PNG', 'ok', 'upper-case extension', png);
  add('thin-ok.png', 'ok', 'thin but within the aspect bound (90:1)', await rgb(90, 1).png().toBuffer());
  add('tiny.png', 'ok', '1x1 image', await rgb(1, 1).png().toBuffer());

  // ---- colour and format variants --------------------------------------------------------
  add('cmyk.jpg', 'ok', 'CMYK JPEG', await rgb(24, 24).toColourspace('cmyk').jpeg().toBuffer());
  add('rgb16.png', 'ok', '16-bit PNG', await rgb(24, 24).toColourspace('rgb16').png().toBuffer());
  add('grey-alpha.png', 'ok', 'grey + alpha', await rgb(24, 24).greyscale().ensureAlpha(0.5).png().toBuffer());
  add('palette.png', 'ok', 'palette PNG', await rgb(24, 24).png({ palette: true, colours: 4 }).toBuffer());
  add('alpha.webp', 'ok', 'WebP with alpha', await rgb(24, 24).ensureAlpha(0.2).webp().toBuffer());
  const frames = [await rgb(16, 16).png().toBuffer(), await sharp({ create: { width: 16, height: 16, channels: 3, background: '#f00' } }).png().toBuffer()];
  add('animated.gif', 'ok', 'animated GIF', await sharp(frames, { join: { animated: true } }).gif().toBuffer());
  add('animated.webp', 'ok', 'animated WebP', await sharp(frames, { join: { animated: true } }).webp().toBuffer());
  const exif = await rgb(30, 20).jpeg().withMetadata({ orientation: 2 }).toBuffer();
  for (let o = 1; o <= 9; o++) add(`exif-${o}.jpg`, 'ok', `EXIF orientation ${o}${o === 9 ? ' (invalid)' : ''}`, patchOrientation(exif, o));

  // ---- broken, truncated, not images -------------------------------------------------------
  add('truncated.png', 'error', 'truncated PNG', png.subarray(0, png.length >> 1));
  add('truncated.jpg', 'error', 'truncated JPEG', jpg.subarray(0, jpg.length >> 1));
  add('header-only.jpg', 'error', 'JPEG header only', jpg.subarray(0, 200));
  add('truncated.webp', 'error', 'truncated WebP', (await rgb(40, 30).webp().toBuffer()).subarray(0, 40));
  add('truncated.gif', 'ok-or-error', 'truncated GIF', (await rgb(40, 30).gif().toBuffer()).subarray(0, 60));
  add('empty.png', 'error', 'zero bytes', '');
  add('text.jpg', 'error', 'text named .jpg', 'hello, not a JPEG\n');
  add('html.png', 'error', 'HTML named .png', '<html><script>alert(1)</script></html>');
  add('random.png', 'error', 'random bytes', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 255)));
  add('fake.heic', 'error', 'HEIC-looking junk', Buffer.concat([Buffer.from('\0\0\0\x18ftypheic\0\0\0\0mif1heic', 'latin1'), Buffer.alloc(256, 7)]));
  add('fake.avif', 'error', 'AVIF-looking junk', Buffer.concat([Buffer.from('\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf', 'latin1'), Buffer.alloc(256, 3)]));
  add('bitmap.bmp', 'error', 'BMP (unsupported)', Buffer.concat([Buffer.from('BM', 'latin1'), Buffer.alloc(60, 0)]));
  add('png-named.jpg', 'ok', 'PNG named .jpg', png);

  // ---- bombs and shapes --------------------------------------------------------------------
  add('bomb-100k.png', 'error', 'header claims 100000x100000', pngClaiming(100_000, 100_000));
  add('strip-1x64M.png', 'error', 'header claims 1 x 64,000,000', pngClaiming(1, 64_000_000));
  add('strip-64Mx1.png', 'error', 'header claims 64,000,000 x 1', pngClaiming(64_000_000, 1));
  add('wide-40000.png', 'error', 'a side over the bound', pngClaiming(40_000, 100));
  add('aspect.png', 'error', 'aspect ratio 200:1 (real pixels)', await rgb(400, 2).png().toBuffer());
  add('max-int.png', 'error', 'header claims 2^31-1 square', pngClaiming(0x7fffffff, 0x7fffffff));
  // sparse: 100 MB on paper, nothing on disk
  const fd = openSync(path.join(ws, 'huge-sparse.png'), 'w');
  ftruncateSync(fd, 100 * 1024 * 1024);
  closeSync(fd);
  add('huge-sparse.png', 'error', '100 MB file (over the byte bound)');

  // ---- SVG tricks (explicit paths only: the folder walk does not take .svg) -----------------
  add('wide-1e9.svg', 'ok-or-error', 'SVG 1e9 wide', '<svg xmlns="http://www.w3.org/2000/svg" width="1000000000" height="10"><rect width="10" height="10"/></svg>');
  add('external.svg', 'ok-or-error', 'SVG pulling /etc/passwd and a remote image',
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="20" height="20"><image xlink:href="file:///etc/passwd" width="20" height="20"/><image href="http://127.0.0.1:9/x.png" width="20" height="20"/></svg>');
  add('laughs.svg', 'ok-or-error', 'SVG entity expansion',
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]><svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><text>&f;</text></svg>');
  add('script.svg', 'ok-or-error', 'SVG with a script', '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><script>alert(1)</script><rect width="5" height="5"/></svg>');
  add('use-loop.svg', 'ok-or-error', 'SVG with a <use> cycle',
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="20" height="20"><g id="a"><use xlink:href="#b"/></g><g id="b"><use xlink:href="#a"/></g></svg>');
  add('zero-size.svg', 'error', 'SVG of size 0', '<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"></svg>');

  // ---- files that are not regular files, and links -------------------------------------------
  execFileSync('mkfifo', [path.join(ws, 'fifo.png')]);
  add('fifo.png', 'refused', 'FIFO');
  execFileSync('mkfifo', [path.join(outside, 'secret-fifo.png')]);
  writeFileSync(path.join(outside, 'secret.png'), png);
  const link = (name: string, target: string, expect: Expect, kind: string) => {
    symlinkSync(target, path.join(ws, name));
    files.push({ name, expect, kind });
  };
  link('zero.png', '/dev/zero', 'refused', 'link to /dev/zero');
  link('null.jpg', '/dev/null', 'refused', 'link to /dev/null');
  link('urandom.webp', '/dev/urandom', 'refused', 'link to /dev/urandom');
  link('tty.png', '/dev/tty', 'refused', 'link to /dev/tty');
  link('passwd.png', '/etc/passwd', 'refused', 'link to /etc/passwd');
  link('escape.png', path.join(outside, 'secret.png'), 'refused', 'link to an image outside the folder');
  link('escape-rel.png', '../outside/secret.png', 'refused', 'relative link leaving the folder');
  link('escape-fifo.png', path.join(outside, 'secret-fifo.png'), 'refused', 'link to a FIFO outside the folder');
  link('dangling.png', path.join(ws, 'no-such.png'), 'refused', 'dangling link');
  link('loop-a.png', 'loop-b.png', 'refused', 'link loop');
  link('loop-b.png', 'loop-a.png', 'refused', 'link loop');
  link('inside-link.png', 'good.png', 'ok', 'link that stays inside');
  link('sub/up-link.jpg', '../good.jpg', 'ok', 'link to the parent folder, still inside');
  link('dir-link.png', outside, 'refused', 'link to a folder outside');
  mkdirSync(path.join(ws, 'folder.png'));
  files.push({ name: 'folder.png', expect: 'refused', kind: 'folder named .png' });
  symlinkSync(outside, path.join(ws, 'outdir'));
  files.push({ name: 'outdir/secret.png', expect: 'refused', kind: 'path through a folder link leaving the folder' });
  files.push({ name: 'missing.png', expect: 'refused', kind: 'missing file' });
  return { ws, outside, files };
}
