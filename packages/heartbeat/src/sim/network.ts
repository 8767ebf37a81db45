/**
 * A simulated network in virtual time: named media (one per heartbeat link) joining named nodes, with
 * seeded packet loss, delay and jitter per medium, cut media (for all nodes or one node's port) and
 * partitions. Deliveries are timers on a ManualClock, so a run is a pure function of its seed and
 * script: the tests assert exact detection times.
 */
import type { ManualClock } from '@tandem/core';

/** mulberry32: small, fast, and the same sequence on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface MediumConditions {
  /** Probability that one copy is lost, 0..1. */
  loss: number;
  /** One-way delay, ms. */
  delayMs: number;
  /** Uniform extra delay 0..jitterMs. */
  jitterMs: number;
}

export type Deliver<T> = (payload: T, from: string, medium: string) => void;

export interface NetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  blocked: number;
}

export class SimNetwork<T> {
  readonly clock: ManualClock;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, blocked: 0 };
  readonly #random: () => number;
  readonly #ports = new Map<string, Map<string, Deliver<T>>>(); // medium -> node -> handler
  readonly #conditions = new Map<string, MediumConditions>();
  readonly #cutMedia = new Set<string>();
  readonly #cutPorts = new Set<string>(); // `${medium}\0${node}`
  #partition: Map<string, number> | undefined;

  constructor(clock: ManualClock, seed = 1) {
    this.clock = clock;
    this.#random = seededRandom(seed);
  }

  attach(node: string, medium: string, deliver: Deliver<T>): void {
    let m = this.#ports.get(medium);
    if (!m) this.#ports.set(medium, (m = new Map()));
    m.set(node, deliver);
  }

  detach(node: string): void {
    for (const m of this.#ports.values()) m.delete(node);
  }

  setConditions(medium: string, c: Partial<MediumConditions>): void {
    const cur = this.#conditions.get(medium) ?? { loss: 0, delayMs: 0, jitterMs: 0 };
    this.#conditions.set(medium, { ...cur, ...c });
  }

  /** Cuts a medium for everyone, or only one node's port on it (its cable pulled). */
  cut(medium: string, node?: string): void {
    if (node === undefined) this.#cutMedia.add(medium);
    else this.#cutPorts.add(`${medium}\0${node}`);
  }

  restore(medium: string, node?: string): void {
    if (node === undefined) this.#cutMedia.delete(medium);
    else this.#cutPorts.delete(`${medium}\0${node}`);
  }

  /** Splits the nodes into groups that hear only each other, on every medium. */
  partition(groups: readonly (readonly string[])[]): void {
    this.#partition = new Map();
    groups.forEach((g, i) => g.forEach((n) => this.#partition!.set(n, i)));
  }

  heal(): void {
    this.#partition = undefined;
  }

  #blocked(medium: string, from: string, to: string): boolean {
    if (this.#cutMedia.has(medium)) return true;
    if (this.#cutPorts.has(`${medium}\0${from}`) || this.#cutPorts.has(`${medium}\0${to}`)) return true;
    if (this.#partition && from !== to) {
      const a = this.#partition.get(from);
      const b = this.#partition.get(to);
      if (a === undefined || b === undefined || a !== b) return true;
    }
    return false;
  }

  /** Sends one copy to every other node on the medium (and to the sender when `self` is set). */
  send(from: string, medium: string, payload: T, self = false): void {
    const ports = this.#ports.get(medium);
    if (!ports) return;
    const c = this.#conditions.get(medium) ?? { loss: 0, delayMs: 0, jitterMs: 0 };
    for (const [to, deliver] of ports) {
      if (to === from && !self) continue;
      this.stats.sent++;
      if (this.#blocked(medium, from, to)) {
        this.stats.blocked++;
        continue;
      }
      // Draw both numbers for every copy so one copy's fate does not shift the others' sequence.
      const lossDraw = this.#random();
      const jitterDraw = this.#random();
      if (lossDraw < c.loss) {
        this.stats.lost++;
        continue;
      }
      const delay = c.delayMs + Math.floor(jitterDraw * (c.jitterMs + 1));
      this.clock.setTimeout(() => {
        if (!ports.has(to)) return;
        this.stats.delivered++;
        deliver(payload, from, medium);
      }, delay);
    }
  }
}
