/**
 * Lowering the scheduling priority of one thread. On Linux a thread's nice value is its own (threads it starts
 * inherit it), so a thread doing background work can yield the cores to the threads answering requests while the
 * rest of the process keeps its priority. Elsewhere, where /proc/thread-self does not exist, nothing changes.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** Raise the calling thread's nice value by `steps` (at most to 19); false when the system does not allow it. */
export function lowerThreadPriority(steps: number): boolean {
  try {
    const threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(threadId, Math.min(19, getPriority(threadId) + steps));
    return true;
  } catch {
    return false;
  }
}
