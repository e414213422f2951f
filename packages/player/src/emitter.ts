/** A minimal typed event emitter; a listener that throws does not stop the others. */
export interface Emitter<Events extends Record<string, unknown>> {
  on<E extends keyof Events>(event: E, listener: (payload: Events[E]) => void): () => void;
  off<E extends keyof Events>(event: E, listener: (payload: Events[E]) => void): void;
  emit<E extends keyof Events>(event: E, payload: Events[E]): void;
  clear(): void;
}

export function createEmitter<Events extends Record<string, unknown>>(): Emitter<Events> {
  const listeners = new Map<keyof Events, Set<(payload: never) => void>>();
  const off: Emitter<Events>["off"] = (event, listener) => {
    listeners.get(event)?.delete(listener as (payload: never) => void);
  };
  return {
    on(event, listener) {
      const set = listeners.get(event) ?? new Set();
      listeners.set(event, set);
      set.add(listener as (payload: never) => void);
      return () => off(event, listener);
    },
    off,
    emit(event, payload) {
      for (const listener of [...(listeners.get(event) ?? [])]) {
        try {
          (listener as (value: Events[typeof event]) => void)(payload);
        } catch (error) {
          // An app's listener bug must not break key loading; surface it asynchronously.
          queueMicrotask(() => {
            throw error;
          });
        }
      }
    },
    clear: () => listeners.clear(),
  };
}
