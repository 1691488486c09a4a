/**
 * The one redaction helper: everything tidemark writes to logs, run records, validation details,
 * telemetry and HTTP answers goes through it, so a secret that reaches an error message (a
 * driver echoing its connection string, a webhook URL in a network error) never leaves the
 * process. Two layers: the exact values of the settings the project names (connections,
 * warehouses, webhooks), registered when they are read, and patterns for secrets whose values
 * we never saw (key=value pairs of connection strings, URL passwords, signed query strings).
 */
const MASK = '***';
const known = new Set<string>();

/** Shorter values would mask ordinary words; a real secret or URL is longer. */
const MIN_SECRET_LENGTH = 6;

/** Remembers a setting's value (and the secret parts inside it) so that it is masked wherever it appears. */
export function registerSecret(value: string | undefined): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return;
  known.add(value);
  for (const m of value.matchAll(SECRET_PAIR)) if (m[2] && m[2].length >= MIN_SECRET_LENGTH) known.add(unquote(m[2]));
  for (const m of value.matchAll(URL_PASSWORD)) if (m[2] && m[2].length >= MIN_SECRET_LENGTH) known.add(m[2]);
  try {
    const u = new URL(value);
    if (u.password) known.add(decodeURIComponent(u.password));
    // Webhook URLs carry their token in the path (Slack, Teams) or the query.
    if (u.pathname.length > 1) known.add(`${u.host}${u.pathname}`);
    for (const [, v] of u.searchParams) if (v.length >= MIN_SECRET_LENGTH) known.add(v);
  } catch {
    // not a URL: the value itself is registered
  }
}

function unquote(v: string): string {
  return v.replace(/^['"{]|['"}]$/g, '');
}

// Password=…; AccountKey=…; in ADO / storage / Service Bus connection strings.
const SECRET_PAIR = /\b(password|pwd|accountkey|sharedaccesskey|sharedaccesssignature|clientsecret|client_secret)\s*=\s*("[^"]*"|'[^']*'|\{[^}]*\}|[^;&\s'",)]+)/gi;
// ?code=… (function keys), &sig=… (SAS), token / secret / key query parameters.
const SECRET_QUERY = /([?&](?:code|sig|token|access_token|secret|key|api-key|apikey|password)=)([^&\s#'"]+)/gi;
// scheme://user:password@host
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s@/]+)@/gi;

export function redact(text: string): string {
  let out = text;
  // Longest first, so a whole URL is masked before a part of it.
  for (const s of [...known].sort((a, b) => b.length - a.length)) if (out.includes(s)) out = out.split(s).join(MASK);
  out = out.replace(URL_PASSWORD, `$1${MASK}@`);
  out = out.replace(SECRET_PAIR, (_m, k: string) => `${k}=${MASK}`);
  out = out.replace(SECRET_QUERY, `$1${MASK}`);
  return out;
}

/** Redacts every string inside a JSON-like value (log fields, event dimensions, run records). */
export function redactValue<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as T;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, redactValue(v)])) as T;
  }
  return value;
}

/** For tests: forget the registered values. */
export function forgetSecrets(): void {
  known.clear();
}
