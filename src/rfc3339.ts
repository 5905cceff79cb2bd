/**
 * RFC 3339 times, the one parser for every time strata reads: `-timestamp`
 * flags, object metadata (`litestream-timestamp`), branch manifests. A time
 * must name its zone (`Z` or `±hh:mm`: never guessed as local time or UTC) and
 * be a real calendar time (`2026-02-30` is refused, not read as March 2).
 * Fractions of up to 9 digits are truncated to the millisecond.
 */

const FORM =
  /^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)?$/;

/** The time `s` names, or why it is not an RFC 3339 time. */
export function readRFC3339(s: string): Date | string {
  const m = FORM.exec(s.trim());
  if (!m) {
    return /^\d{4}-\d\d-\d\d$/.test(s.trim())
      ? "a date needs a time and a zone, e.g. 2026-11-22T00:00:00Z"
      : "not an RFC 3339 time such as 2026-11-22T10:00:00Z or 2026-11-22T11:00:00+01:00";
  }
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const zone = m[8];
  if (zone === undefined) {
    return "no time zone: add Z (UTC) or an offset such as +01:00";
  }
  if (month < 1 || month > 12) return `no month ${m[2]}`;
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > days) return `${m[1]}-${m[2]} has no day ${m[3]}`;
  if (hour > 23 || minute > 59 || second > 59) return `no time ${m[4]}:${m[5]}:${m[6]}`;
  const ms = Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  let t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  if (year < 100) t = new Date(t).setUTCFullYear(year);
  if (zone !== "Z" && zone !== "z") {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) return `no zone offset ${zone}`;
    t -= (zone[0] === "-" ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return new Date(t);
}

/** The time `s` names, or null when it is not an RFC 3339 time. */
export function parseRFC3339(s: string): Date | null {
  const d = readRFC3339(s);
  return typeof d === "string" ? null : d;
}
