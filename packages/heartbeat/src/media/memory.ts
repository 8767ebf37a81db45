/**
 * An in-memory network of Media for tests and simulations: every medium attached to the same link
 * name hears every other one (a broadcast segment), with loss, delay, jitter, cut ports, cut links
 * and partitions. Delivery is a timer on the injected Clock, so with a ManualClock a run is
 * deterministic; with realClock it behaves like a real (asynchronous) network.
 */
import { realClock, type Clock } from '@tandem/core';
import { seededRandom } from '@tandem/core/random';
import type { Medium, Received } from '../types.ts';

// Re-exported: the media index and the fuzz test take it from here.
export { seededRandom };

export interface LinkConditions {
  /** Probability 0..1 that a copy is lost. */
  loss: number;
  delayMs: number;
  /** Extra uniform delay 0..jitterMs. */
  jitterMs: number;
}

interface Port {
  node: string;
  link: string;
  deliver: ((r: Received) => void) | undefined;
}

export class MemoryNetwork {
  readonly clock: Clock;
  readonly stats = { sent: 0, delivered: 0, lost: 0, blocked: 0 };
  readonly #random: () => number;
  readonly #ports = new Set<Port>();
  readonly #conditions = new Map<string, LinkConditions>();
  readonly #cutLinks = new Set<string>();
  readonly #cutPorts = new Set<string>();
  #groups: Map<string, number> | undefined;

  constructor(clock: Clock = realClock, seed = 1) {
    this.clock = clock;
    this.#random = seededRandom(seed);
  }

  /** A medium for `node` on `link` (the link name is what cl_status shows, e.g. `eth0`). */
  medium(node: string, link = 'mem0'): Medium {
    const port: Port = { node, link, deliver: undefined };
    return {
      type: 'memory',
      link,
      start: async (onPacket) => {
        port.deliver = onPacket;
        this.#ports.add(port);
      },
      send: (packet) => this.#send(port, packet),
      close: async () => {
        this.#ports.delete(port);
        port.deliver = undefined;
      },
    };
  }

  conditions(link: string, c: Partial<LinkConditions>): void {
    this.#conditions.set(link, { loss: 0, delayMs: 0, jitterMs: 0, ...this.#conditions.get(link), ...c });
  }

  /** Cuts a link for everyone, or only `node`'s port on it. */
  cut(link: string, node?: string): void {
    if (node === undefined) this.#cutLinks.add(link);
    else this.#cutPorts.add(`${link}\0${node}`);
  }

  restore(link: string, node?: string): void {
    if (node === undefined) this.#cutLinks.delete(link);
    else this.#cutPorts.delete(`${link}\0${node}`);
  }

  /** Only nodes in the same group hear each other (on every link). */
  partition(...groups: string[][]): void {
    this.#groups = new Map();
    groups.forEach((g, i) => g.forEach((n) => this.#groups!.set(n, i)));
  }

  heal(): void {
    this.#groups = undefined;
  }

  #blocked(a: Port, b: Port): boolean {
    if (this.#cutLinks.has(a.link)) return true;
    if (this.#cutPorts.has(`${a.link}\0${a.node}`) || this.#cutPorts.has(`${b.link}\0${b.node}`)) return true;
    return this.#groups !== undefined && this.#groups.get(a.node) !== this.#groups.get(b.node);
  }

  #send(from: Port, packet: Buffer): void {
    if (!this.#ports.has(from)) return;
    this.stats.sent++;
    const c = this.#conditions.get(from.link) ?? { loss: 0, delayMs: 0, jitterMs: 0 };
    for (const to of this.#ports) {
      if (to === from || to.link !== from.link || to.node === from.node) continue;
      if (this.#blocked(from, to)) { this.stats.blocked++; continue; }
      if (c.loss > 0 && this.#random() < c.loss) { this.stats.lost++; continue; }
      const delay = c.delayMs + (c.jitterMs > 0 ? this.#random() * c.jitterMs : 0);
      const copy = Buffer.from(packet);
      this.clock.setTimeout(() => {
        if (!to.deliver || !this.#ports.has(to)) return;
        this.stats.delivered++;
        to.deliver({ packet: copy, link: to.link, from: `${from.node}@${from.link}` });
      }, delay);
    }
  }
}
