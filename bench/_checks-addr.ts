// Loopback addresses for the checks benchmark: real i is 127.20+a.b.c with b, c in 1..250, so
// 10,000 reals are 127.20.1.1 .. 127.20.40.250 (loopback /8 only; nothing is configured: Linux
// answers on all of 127.0.0.0/8).
export function benchAddress(i: number): string {
  const a = 20 + Math.floor(i / 62_500);
  const b = (Math.floor(i / 250) % 250) + 1;
  const c = (i % 250) + 1;
  return `127.${a}.${b}.${c}`;
}
