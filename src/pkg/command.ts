import { spawn } from 'node:child_process';

export interface CommandResult { code: number; stdout: string; stderr: string }

/** Runs a program with optional stdin; never throws for a non-zero exit (callers decide what failure means). */
export function runCommand(cmd: string, args: string[], input?: string | Buffer | readonly Buffer[]): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => resolve({
      code: code ?? (signal ? 128 : 1),
      stdout: Buffer.concat(out).toString(),
      stderr: Buffer.concat(err).toString(),
    }));
    // EPIPE when the program exits before reading all of its input: its exit status says why.
    child.stdin.on('error', () => {});
    if (Array.isArray(input)) {
      // Pieces of a large restore input: written as they are, never joined into one copy.
      for (const b of input) child.stdin.write(b);
      child.stdin.end();
    } else {
      child.stdin.end(input ?? '');
    }
  });
}

/** What side-effecting code takes instead of calling runCommand directly, so tests can hand it a fake. */
export type Run = typeof runCommand;

export function firstLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).find(Boolean) ?? '(no message)';
}
