// Who is signed in. The token lives in localStorage so a second tab opens signed in; it expires
// with the JWT (`exp`), and any 401 signs out. The admin token is kept per tab only
// (sessionStorage): it is a shared secret of the whole host.

const TOKEN_KEY = 'taskhost.token';
const RECENT_KEY = 'taskhost.recent-users';
const ADMIN_KEY = 'taskhost.admin-token';

/** The claims of a JWT (not verified: the host does that), or null if it is not one. */
export function decodeJwt(token) {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), '='));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** `{token, user, expiresAt}` of the stored session, if it has not expired. */
export function loadSession() {
  const token = localStorage.getItem(TOKEN_KEY);
  const session = token && sessionFrom(token);
  if (!session) localStorage.removeItem(TOKEN_KEY);
  return session;
}

/** A session for `token`, or null when it is not a JWT with a `sub` that is still valid. */
export function sessionFrom(token) {
  const claims = decodeJwt(token.trim());
  if (!claims || typeof claims.sub !== 'string' || !claims.sub) return null;
  const expiresAt = typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  if (expiresAt && expiresAt <= Date.now()) return null;
  return { token: token.trim(), user: claims.sub, expiresAt };
}

export function saveSession(session) {
  localStorage.setItem(TOKEN_KEY, session.token);
  const recent = [session.user, ...recentUsers().filter((u) => u !== session.user)].slice(0, 5);
  localStorage.setItem(RECENT_KEY, JSON.stringify(recent));
}

export function clearSession() {
  localStorage.removeItem(TOKEN_KEY);
}

export function recentUsers() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(list) ? list.filter((u) => typeof u === 'string') : [];
  } catch {
    return [];
  }
}

export const adminToken = {
  get: () => sessionStorage.getItem(ADMIN_KEY),
  set: (t) => sessionStorage.setItem(ADMIN_KEY, t),
  clear: () => sessionStorage.removeItem(ADMIN_KEY),
};
