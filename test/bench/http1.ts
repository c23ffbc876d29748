import type { Socket } from "bun";

/**
 * The load generator's HTTP/1.1 client: kept-alive TCP connections, one request at a time on each,
 * request bytes written as one string and answers parsed just far enough (status, `content-length`
 * or chunked body, one named header). The generator shares the machine's cores with the node it
 * measures; `fetch` costs ~30 µs of CPU per request here, which is taken from the node. A client on
 * another machine would not take it, so the generator should take as little as it can.
 */
export interface Http1Answer {
  status: number;
  /** The one header asked for (`want`), lower-cased name; null when absent. */
  header: string | null;
  body: string;
}

interface Conn {
  socket: Socket<undefined> | undefined;
  buffer: Buffer;
  want: string | undefined;
  pending: { resolve: (a: Http1Answer) => void; reject: (e: Error) => void } | undefined;
  /** Bytes not yet written (the socket took only part of them). */
  unsent: Buffer | undefined;
  closed: boolean;
}

const HEADER_END = Buffer.from("\r\n\r\n");
/** An answer larger than this is refused: the bench's answers are a few hundred bytes. */
const ANSWER_MAX_BYTES = 1 << 20;

export class Http1Pool {
  private readonly idle: Conn[] = [];
  private readonly all = new Set<Conn>();
  private readonly hostname: string;
  private readonly port: number;
  private readonly host: string;

  constructor(origin: string, private readonly connectionsMax: number) {
    const u = new URL(origin);
    if (u.protocol !== "http:") throw new Error(`http1: only http:// origins (${origin})`);
    this.hostname = u.hostname;
    this.port = Number(u.port || 80);
    this.host = u.host;
  }

  /** One request; `headers` is ready-made header lines, each ending in CRLF. */
  async request(method: string, path: string, headers: string, body: string, want?: string): Promise<Http1Answer> {
    const conn = this.idle.pop() ?? (await this.open());
    const bytes = Buffer.byteLength(body);
    const text = `${method} ${path} HTTP/1.1\r\nhost: ${this.host}\r\n${headers}content-length: ${bytes}\r\n\r\n${body}`;
    return new Promise<Http1Answer>((resolve, reject) => {
      conn.want = want;
      conn.pending = {
        resolve: (a) => {
          conn.pending = undefined;
          if (!conn.closed) this.idle.push(conn);
          resolve(a);
        },
        reject: (e) => {
          conn.pending = undefined;
          reject(e);
        },
      };
      this.write(conn, text);
    });
  }

  close(): void {
    for (const c of this.all) c.socket?.end();
    this.all.clear();
    this.idle.length = 0;
  }

  private write(conn: Conn, text: string): void {
    const written = conn.socket!.write(text);
    // The bench's requests fit a socket buffer; the rest of a partial write waits for `drain`.
    if (written < text.length) conn.unsent = Buffer.from(text).subarray(Math.max(0, written));
  }

  private async open(): Promise<Conn> {
    if (this.all.size >= this.connectionsMax) throw new Error(`http1: ${this.connectionsMax} connections in use`);
    const conn: Conn = { socket: undefined, buffer: Buffer.alloc(0), want: undefined, pending: undefined, unsent: undefined, closed: false };
    this.all.add(conn);
    const lost = (error: Error) => {
      conn.closed = true;
      this.all.delete(conn);
      const i = this.idle.indexOf(conn);
      if (i >= 0) this.idle.splice(i, 1);
      conn.pending?.reject(error);
    };
    try {
      conn.socket = await Bun.connect({
        hostname: this.hostname,
        port: this.port,
        socket: {
          data: (_s, chunk) => this.received(conn, chunk),
          drain: (s) => {
            if (conn.unsent !== undefined) {
              const rest = conn.unsent;
              conn.unsent = undefined;
              const written = s.write(rest);
              if (written < rest.length) conn.unsent = rest.subarray(Math.max(0, written));
            }
          },
          close: () => lost(new Error("http1: connection closed")),
          error: (_s, error) => lost(error),
        },
      });
      conn.socket.setNoDelay(true);
    } catch (error) {
      this.all.delete(conn);
      throw error;
    }
    return conn;
  }

  private received(conn: Conn, chunk: Buffer): void {
    conn.buffer = conn.buffer.length ? Buffer.concat([conn.buffer, chunk]) : Buffer.from(chunk);
    if (!conn.pending) return;
    const end = conn.buffer.indexOf(HEADER_END);
    if (end < 0) {
      if (conn.buffer.length > ANSWER_MAX_BYTES) conn.socket?.end();
      return;
    }
    const head = conn.buffer.toString("latin1", 0, end);
    const status = Number(head.slice(9, 12));
    const start = end + 4;
    let body: string | undefined;
    let consumed = 0;
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (length) {
      const n = Number(length[1]);
      if (conn.buffer.length < start + n) return;
      body = conn.buffer.toString("utf8", start, start + n);
      consumed = start + n;
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const parts: Buffer[] = [];
      let at = start;
      for (;;) {
        const line = conn.buffer.indexOf("\r\n", at);
        if (line < 0) return;
        const size = Number.parseInt(conn.buffer.toString("latin1", at, line), 16);
        if (conn.buffer.length < line + 2 + size + 2) return;
        if (size === 0) {
          consumed = line + 4;
          break;
        }
        parts.push(conn.buffer.subarray(line + 2, line + 2 + size));
        at = line + 2 + size + 2;
      }
      body = Buffer.concat(parts).toString("utf8");
    } else {
      // No length and not chunked: the body runs to the connection's end (HTTP/1.0 style); not used by the bench.
      conn.pending.reject(new Error(`http1: an answer without content-length: ${head.split("\r\n")[0]}`));
      conn.socket?.end();
      return;
    }
    conn.buffer = consumed < conn.buffer.length ? conn.buffer.subarray(consumed) : Buffer.alloc(0);
    let header: string | null = null;
    if (conn.want) {
      const m = new RegExp(`\\r\\n${conn.want}:[ \\t]*([^\\r]*)`, "i").exec(head);
      header = m ? m[1]!.trim() : null;
    }
    if (/\r\nconnection:\s*close/i.test(head)) {
      conn.closed = true;
      conn.socket?.end();
    }
    conn.pending.resolve({ status, header, body });
  }
}
