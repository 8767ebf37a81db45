/**
 * Node's libuv TCP bindings (tcp_wrap, stream_wrap, uv: the layer under net.Socket), for the two
 * hot paths that drive TCP handles directly: the data plane's raw engine (packages/ipvs) and the
 * plain-http check (packages/ldirectord). They are internal to Node (process.binding, deprecated
 * but kept for compatibility), so they are loaded once, checked for what the caller needs, and a
 * caller falls back to net.Socket when `loadUvTcp` says why it cannot have them.
 */

/** A libuv TCP handle as tcp_wrap exposes it (only what tandem uses). */
export interface UvTcpHandle {
  onread: ((ab: ArrayBuffer | undefined) => void) | null;
  onconnection: ((err: number, client: UvTcpHandle | undefined) => void) | null;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: object, buf: Buffer): number;
  shutdown(req: object): number;
  close(cb?: () => void): void;
  reset(cb?: () => void): number;
  bind(addr: string, port: number): number;
  bind6(addr: string, port: number, flags: number): number;
  listen(backlog: number): number;
  connect(req: object, addr: string, port: number): number;
  connect6(req: object, addr: string, port: number): number;
  setNoDelay(on: boolean): number;
  getpeername(out: { address?: string; port?: number; family?: string }): number;
  useUserBuffer(buf: Uint8Array): void;
  readonly writeQueueSize: number;
}

export interface UvTcp {
  TCP: new (type: number) => UvTcpHandle;
  TCPConnectWrap: new () => any;
  WriteWrap: new () => any;
  ShutdownWrap: new () => any;
  SOCKET: number;
  SERVER: number;
  IPV6ONLY: number;
  /** streamBaseState: where a read callback finds its byte count and a write its sync/async. */
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
  UV_EOF: number;
}

let loaded: UvTcp | undefined;
let loadError: string | undefined;

/**
 * The bindings, with every handle method in `needs` present, or the reason they are not usable
 * here. Loaded once per process; each caller's `needs` is checked on a probe handle.
 */
export function loadUvTcp(needs: readonly (keyof UvTcpHandle)[]): { uv: UvTcp } | { uv?: undefined; error: string } {
  if (!loaded && !loadError) {
    try {
      const pb = (process as unknown as { binding(name: string): any }).binding;
      const tcp = pb('tcp_wrap');
      const sw = pb('stream_wrap');
      const uv = pb('uv');
      const b: UvTcp = {
        TCP: tcp.TCP,
        TCPConnectWrap: tcp.TCPConnectWrap,
        WriteWrap: sw.WriteWrap,
        ShutdownWrap: sw.ShutdownWrap,
        SOCKET: tcp.constants.SOCKET,
        SERVER: tcp.constants.SERVER,
        IPV6ONLY: tcp.constants.UV_TCP_IPV6ONLY,
        state: sw.streamBaseState,
        kReadBytesOrError: sw.kReadBytesOrError,
        kArrayBufferOffset: sw.kArrayBufferOffset,
        kLastWriteWasAsync: sw.kLastWriteWasAsync,
        UV_EOF: uv.UV_EOF,
      };
      if (!(b.state instanceof Int32Array) || typeof b.kReadBytesOrError !== 'number' || typeof b.UV_EOF !== 'number') throw new Error('stream_wrap lacks its shared state');
      loaded = b;
    } catch (e) {
      // process.binding may print a deprecation warning or be gone; callers fall back to net.
      loadError = (e as Error).message;
    }
  }
  if (!loaded) return { error: loadError ?? 'not loaded' };
  const probe = new loaded.TCP(loaded.SOCKET);
  try {
    for (const m of needs) if (typeof probe[m] !== 'function') return { error: `tcp_wrap lacks ${String(m)}` };
  } finally {
    probe.close();
  }
  return { uv: loaded };
}
