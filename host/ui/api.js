// The host's HTTP API, same origin. Errors carry the status and the host's own message
// (`{"error": "..."}`), which is written to be shown to people.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * `api('/api/tasks', {token, method, body})` → parsed JSON (or null for 204).
 * `body` may be an object (sent as JSON) or a Blob/File (sent as it is, e.g. a .wasm upload).
 */
export async function api(path, { token, method = 'GET', body, contentType } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body instanceof Blob) {
    payload = body;
    headers['Content-Type'] = contentType || body.type || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'The host cannot be reached. Check that taskhost is running.');
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) {
    const message = (data && typeof data.error === 'string' && data.error)
      || `${method} ${path} answered ${response.status} ${response.statusText}`.trim();
    throw new ApiError(response.status, message);
  }
  return data;
}
