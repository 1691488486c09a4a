const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const DURATION_PATTERN = /^(\d+)(ms|s|m|h|d)$/;

/** "5m" → 300000. Durations are small strings in YAML so that they read like the docs. */
export function parseDuration(text: string): number {
  const m = DURATION_PATTERN.exec(text.trim());
  if (!m) throw new Error(`invalid duration ${JSON.stringify(text)}: use a number and a unit (ms, s, m, h, d), e.g. 5m`);
  return Number(m[1]) * UNITS[m[2]!]!;
}
