// The live stream: `GET /ws?token=` sends one frame per task change of the signed-in user
// (`{"type":"task.completed","task_id","task","at"}`). The socket reconnects by itself with
// exponential backoff and jitter; after every (re)connect the page reloads the list, because
// frames sent while it was away are gone.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;

export class LiveSocket {
  /**
   * @param {() => string} token  the current token, read at each connect
   * @param {{onFrame, onOpen, onState, onAuthSuspect}} handlers
   *   onState('connecting' | 'live' | 'offline', retryInMs?); onAuthSuspect() after repeated
   *   failures to connect, which may mean the token was refused (the browser hides the 401).
   */
  constructor(token, handlers) {
    this.token = token;
    this.handlers = handlers;
    this.socket = null;
    this.failures = 0;
    this.timer = null;
    this.stopped = true;
    this.onWake = () => { if (!this.stopped && !this.socket) this.connectNow(); };
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this.onWake);
    document.addEventListener('visibilitychange', this.onWake);
    this.connectNow();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onWake);
    document.removeEventListener('visibilitychange', this.onWake);
    clearTimeout(this.timer);
    if (this.socket) {
      const s = this.socket;
      this.socket = null;
      s.close(1000, 'signed out');
    }
    this.handlers.onState('off');
  }

  connectNow() {
    clearTimeout(this.timer);
    if (this.stopped || this.socket) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/ws?token=${encodeURIComponent(this.token())}`;
    this.handlers.onState('connecting');
    let opened = false;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      opened = true;
      this.failures = 0;
      this.handlers.onState('live');
      this.handlers.onOpen();
    });
    socket.addEventListener('message', (e) => {
      let frame;
      try { frame = JSON.parse(e.data); } catch { return; }
      if (frame && typeof frame.type === 'string') this.handlers.onFrame(frame);
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (!opened) this.failures += 1;
      if (this.failures === 3) this.handlers.onAuthSuspect();
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.failures);
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
    this.handlers.onState('offline', delay);
    this.timer = setTimeout(() => this.connectNow(), delay);
  }
}
