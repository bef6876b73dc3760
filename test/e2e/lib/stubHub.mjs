// A stand-in for the Hugging Face Hub on 127.0.0.1 (the extension reads HF_ENDPOINT): 'closed' leaves the
// port closed, so a download fails at once as it does offline (ECONNREFUSED); 'hang' accepts connections and
// never answers, so a download waits (what Stop must end). Nothing here ever sends a byte.
import * as net from 'node:net';

export function stubHub(port) {
  let server;
  const sockets = new Set();
  let connections = 0;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    /** @param {'closed' | 'hang'} m */
    async mode(m) {
      if (m === 'hang') {
        if (server) return;
        server = net.createServer((s) => {
          connections++;
          sockets.add(s);
          s.on('error', () => {});
          s.on('close', () => sockets.delete(s));
        });
        await new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
        return;
      }
      const s = server;
      server = undefined;
      for (const sock of sockets) sock.destroy();
      if (s) await new Promise((r) => s.close(() => r()));
    },
  };
}
