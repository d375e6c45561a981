/**
 * A container's output as lines: its last N lines of stdout and stderr read from the daemon, the
 * stream's frames taken apart (demultiplexed). Used for the output tail of a failed replica or job
 * (DockerHost.tail); masking secrets is the caller's (redact in src/apply/job.ts).
 */
import type Dockerode from 'dockerode';

export interface LogTailOptions {
  /** how many lines, counted from the end */
  lines: number;
  /** only the output from then on: Docker's `seconds.nanoseconds` */
  since?: string;
}

/** The container's last lines of output (stdout and stderr as they came), oldest first, without the empty ones at the end. */
export async function readLogTail(container: Dockerode.Container, { lines, since }: LogTailOptions): Promise<string[]> {
  const buf = (await container.logs({ stdout: true, stderr: true, tail: lines, ...(since === undefined ? {} : { since }) })) as unknown as Buffer;
  return logLines(logText(buf)).slice(-lines);
}

/**
 * The text of a log stream. A container without a TTY has its output sent in frames of an 8-byte
 * header (stream 0, 1 or 2, three zero bytes, the size) and the payload; one with a TTY has it
 * raw, which is told by its first bytes.
 */
export function logText(buf: Buffer): string {
  return isMultiplexed(buf) ? demux(buf) : buf.toString();
}

/** Whether the stream starts with a frame header: a stream number 0-2 followed by three zero bytes. */
export function isMultiplexed(buf: Buffer): boolean {
  return buf.length >= 8 && buf[0]! <= 2 && buf[1] === 0 && buf[2] === 0 && buf[3] === 0;
}

/** Docker's multiplexed log stream (8-byte frame headers) as text. */
export function demux(buf: Buffer): string {
  let out = '';
  for (let i = 0; i + 8 <= buf.length;) {
    const size = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + size).toString();
    i += 8 + size;
  }
  return out;
}

/** Text as lines: CRLF and CR line ends too, the empty lines at the end left out. */
export function logLines(text: string): string[] {
  const lines = text.split(/\r?\n|\r/);
  while (lines.length && lines.at(-1)!.trim() === '') lines.pop();
  return lines;
}
