// The live stream: GET v1/ops/stream (Server-Sent Events). The browser's
// EventSource reconnects by itself and resumes with Last-Event-ID. When the
// server refuses a reconnect (EventSource gives up: CLOSED), a new one is
// opened after a back-off, resuming after the last id seen, and the page
// reloads its lists once it is open again (onResync), in case events were
// trimmed meanwhile.

/**
 * connect({token, onEvent(type, data), onStatus('connecting'|'live'|'offline'), onResync()})
 * → {ready: Promise (settles on the first open or failure), close()}
 */
export function connect({ token, onEvent, onStatus, onResync }) {
  let es = null;
  let lastId = '';
  let backoff = 1000;
  let timer = 0;
  let closed = false;
  let settle;
  const ready = new Promise((resolve) => {
    settle = resolve;
  });
  const firstTimeout = setTimeout(() => settle(), 4000);

  function open(resync) {
    if (closed) return;
    let url = `v1/ops/stream?access_token=${encodeURIComponent(token)}`;
    if (lastId) url += `&last_event_id=${encodeURIComponent(lastId)}`;
    es = new EventSource(url);
    onStatus('connecting');
    es.addEventListener('open', () => {
      backoff = 1000;
      onStatus('live');
      settle();
      if (resync) {
        resync = false;
        onResync();
      }
    });
    for (const type of ['request', 'technician']) {
      es.addEventListener(type, (ev) => {
        if (ev.lastEventId) lastId = ev.lastEventId;
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch {
          return;
        }
        onEvent(type, data);
      });
    }
    es.addEventListener('error', () => {
      if (closed) return;
      if (es.readyState === EventSource.CLOSED) {
        settle();
        onStatus('offline');
        es.close();
        clearTimeout(timer);
        timer = setTimeout(() => open(true), backoff);
        backoff = Math.min(backoff * 2, 30000);
      } else {
        onStatus('connecting'); // the browser is reconnecting
      }
    });
  }

  open(false);
  return {
    ready,
    close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(firstTimeout);
      es?.close();
    },
  };
}
