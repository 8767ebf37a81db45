import { strict as assert } from 'node:assert';
import { LinkedSet } from '../src/dataplane/env.ts';

class Node {
  readonly name: string;
  aPrev: object | null = null;
  aNext: object | null = null;
  bPrev: object | null = null;
  bNext: object | null = null;
  constructor(name: string) {
    this.name = name;
  }
}

describe('dataplane LinkedSet (the open-connection and connecting sets)', () => {
  it('adds, tests, deletes and lists in insertion order; adding twice or deleting a stranger changes nothing', () => {
    const s = new LinkedSet<Node>('aPrev', 'aNext');
    const [x, y, z] = [new Node('x'), new Node('y'), new Node('z')];
    s.add(x);
    s.add(y);
    s.add(z);
    s.add(y);
    assert.equal(s.size, 3);
    assert.deepEqual(s.toArray().map((n) => n.name), ['x', 'y', 'z']);
    assert.equal(s.delete(y), true);
    assert.equal(s.delete(y), false);
    assert.equal(s.has(y), false);
    assert.equal(s.has(x), true);
    assert.deepEqual([...s].map((n) => n.name), ['x', 'z']);
    assert.equal(y.aNext, null, 'a deleted member keeps no link into the set');
    s.add(y);
    assert.deepEqual(s.toArray().map((n) => n.name), ['x', 'z', 'y']);
    assert.equal(s.size, 3);
  });

  it('keeps two sets on different fields of the same members apart, and can be changed while walked', () => {
    const open = new LinkedSet<Node>('aPrev', 'aNext');
    const waiting = new LinkedSet<Node>('bPrev', 'bNext');
    const nodes = ['a', 'b', 'c', 'd'].map((n) => new Node(n));
    for (const n of nodes) open.add(n);
    waiting.add(nodes[1]!);
    waiting.add(nodes[3]!);
    for (const n of waiting) {
      waiting.delete(n);
      open.delete(n);
    }
    assert.equal(waiting.size, 0);
    assert.deepEqual(open.toArray().map((n) => n.name), ['a', 'c']);
    open.clear();
    assert.equal(open.size, 0);
    assert.deepEqual(open.toArray(), []);
    assert.ok(nodes.every((n) => n.aNext === null && n.bNext === null));
  });
});
