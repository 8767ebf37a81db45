/**
 * checktype=N ("combined"), as ldirectord: start with a negotiate check; after a successful
 * negotiate, do N connect checks, then negotiate again. A failed connect forces a negotiate on the
 * next check; a failed negotiate keeps negotiating. Pure: the scheduler asks which kind is next and
 * reports how it went.
 */
export type CombinedStep = 'negotiate' | 'connect';

export class CombinedState {
  readonly connects: number;
  #left = 0;

  constructor(connects: number) {
    this.connects = Math.max(0, Math.floor(connects));
  }

  next(): CombinedStep {
    return this.#left > 0 ? 'connect' : 'negotiate';
  }

  record(step: CombinedStep, up: boolean): void {
    if (step === 'negotiate') this.#left = up ? this.connects : 0;
    else this.#left = up ? this.#left - 1 : 0;
  }
}
