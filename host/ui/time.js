// Times: the API speaks RFC 3339 UTC; people see and type the browser's local time.

export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';

const dayTime = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
});
const dayTimeYear = new Intl.DateTimeFormat(undefined, {
  day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit',
});
const dayOnly = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

const pad = (n) => String(n).padStart(2, '0');

/** An RFC 3339 string → the value of a `datetime-local` input, in local time. */
export function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A `datetime-local` value (local wall time) → RFC 3339 UTC, or null when empty. */
export function fromLocalInput(value) {
  if (!value) return null;
  // "YYYY-MM-DDTHH:mm" without an offset is local time to the Date constructor.
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** An RFC 3339 string → the value of a `date` input (local day). */
export function toLocalDateInput(iso) {
  return iso ? toLocalInput(iso).slice(0, 10) : '';
}

/** A `date` value → the end of that local day in UTC, so the day itself is included. */
export function endOfLocalDay(value) {
  if (!value) return null;
  const d = new Date(`${value}T23:59:59`);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** "Tue 14 Jan, 09:00" (with the year when it is not this year). */
export function formatDateTime(iso) {
  const d = new Date(iso);
  return (d.getFullYear() === new Date().getFullYear() ? dayTime : dayTimeYear).format(d);
}

export const formatDay = (iso) => dayOnly.format(new Date(iso));
export const formatFull = (iso) => full.format(new Date(iso));

/** "in 3 days", "2 hours ago", "now". */
export function fromNow(iso, now = Date.now()) {
  const seconds = (new Date(iso).getTime() - now) / 1000;
  const abs = Math.abs(seconds);
  const units = [
    ['year', 365 * 86400], ['month', 30 * 86400], ['week', 7 * 86400],
    ['day', 86400], ['hour', 3600], ['minute', 60],
  ];
  for (const [unit, size] of units) {
    if (abs >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return seconds < 0 ? 'just now' : 'in under a minute';
}

/** 1440 → "1 day", 90 → "1 h 30 min", 0 → "at due time". */
export function formatOffset(minutes) {
  if (minutes === 0) return 'at due time';
  const parts = [];
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  if (days) parts.push(days === 7 ? '1 week' : `${days} day${days > 1 ? 's' : ''}`);
  if (hours) parts.push(`${hours} h`);
  if (mins) parts.push(`${mins} min`);
  return parts.join(' ');
}
