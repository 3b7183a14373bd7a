/** Pure helpers of the panel (unit-tested with node --test, no browser needed). */

/** Build logs and tracebacks carry terminal colour codes; the panel shows plain text. */
export function plainText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
}

export function formatBytes(size: number): string {
  if (!size) {
    return '0 B';
  }
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  const exponent = Math.min(Math.floor(Math.log10(size) / 3), units.length - 1);
  const value = size / Math.pow(1000, exponent);
  return `${value.toFixed(exponent && value < 10 ? 1 : 0)} ${units[exponent]}`;
}

export function formatSeconds(seconds: number): string {
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds % 60)} s`;
}

export function formatAge(created: string): string {
  const when = Date.parse(created);
  if (isNaN(when)) {
    return '';
  }
  const seconds = Math.max(0, (Date.now() - when) / 1000);
  if (seconds < 90) {
    return 'just now';
  }
  if (seconds < 5400) {
    return `${Math.round(seconds / 60)} min ago`;
  }
  if (seconds < 129600) {
    return `${Math.round(seconds / 3600)} h ago`;
  }
  return `${Math.round(seconds / 86400)} days ago`;
}

/** A default image name for exporting `path`: `My Analysis.ipynb` → `my-analysis:latest`. */
export function imageNameFor(path: string): string {
  const stem =
    (path.split('/').pop() || 'notebook')
      .replace(/\.ipynb$/, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'notebook';
  return `${stem}:latest`;
}

/** How the panel says whether a lock is used: `lock: x.mlbox.lock (87 pinned)` / `no lock`. */
export function lockLabel(
  lock: { file: string; distributions: number } | null
): string {
  return lock
    ? `lock: ${lock.file} (${lock.distributions} pinned, with hashes)`
    : 'no lock: only direct requirements pinned';
}

/** A job's report lines (headline first, `before the build: ` dropped) for a collapsible
 * block: `[summary, detail lines]`, or null when the job has not planned yet. */
export function jobReport(lines: string[] | undefined): [string, string[]] | null {
  if (!lines || !lines.length) {
    return null;
  }
  const [head, ...rest] = lines;
  return [head.replace(/^before the build: /, ''), rest.map(line => line.trim())];
}
