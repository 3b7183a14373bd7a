import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** An error answered by the MLBox REST API, with its status code and message. */
export class MlboxApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errorType: string = ''
  ) {
    super(message);
  }
}

/**
 * Call the server extension under `/mlbox/api/`. ServerConnection adds the token and the XSRF
 * header, like every other JupyterLab request.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'mlbox', 'api', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new MlboxApiError(0, `the Jupyter server did not answer: ${error}`);
  }
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) {
    throw new MlboxApiError(
      response.status,
      (data && data.message) || response.statusText,
      (data && data.error) || ''
    );
  }
  return data as T;
}

export interface IRequirement {
  requirement: string;
  origin: string;
  imports: string[];
  /** For guesses: whether the package index confirmed it (null for other origins). */
  verified: boolean | null;
  /** Where a local build, VCS commit or file line came from ("local build of editable
   * /src/acme", "pyproject.toml [project] dependencies"); empty for the index. */
  where?: string | null;
}

export interface ISystemPackage {
  name: string;
  origin: string;
  because: string;
}

/** One line of the plan's report (core/report.py): `label: text`, `key` for styling. */
export interface IReportLine {
  key: string;
  label: string;
  text: string;
}

/** What a build would reproduce and what it could not verify, before the build. */
export interface IPlanReport {
  notebook: string;
  headline: string;
  lines: IReportLine[];
  lock: { file: string; distributions: number } | null;
  files: { count: number; bytes: number; names: string[] };
  system_packages: ISystemPackage[];
  unverified: { requirement: string; name: string; imports: string[] }[];
}

export interface IRequirementsReply {
  path: string;
  requirements: IRequirement[];
  warnings: string[];
  local_modules: string[];
  system_packages: ISystemPackage[];
  locked: boolean;
  report: IPlanReport;
  image: { tag: string; exists: boolean | null; detail: string };
}

export interface IJob {
  id: string;
  kind: 'build' | 'run' | 'export';
  path: string;
  label: string;
  status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  phase: string;
  message: string;
  step: number | null;
  total: number | null;
  progress: number;
  warnings: string[];
  /** The plan's report as text lines (headline first), once the job has planned. */
  report?: string[];
  created: number;
  started: number | null;
  finished: number | null;
  elapsed: number;
  result: { [key: string]: any } | null;
  error: string | null;
  error_type: string | null;
  log?: string[];
}

export interface IImage {
  tag: string;
  id: string;
  size: number;
  created: string;
  notebook: string;
  kind: string;
  requirements: string[];
}

/** A warm `%%mlbox --session` container (any kernel's), as GET sessions lists it. */
export interface ISession {
  /** What DELETE sessions/<key> takes: owner host/pid/notebook/name. */
  key: string;
  name: string;
  notebook: string;
  image: string;
  container: string;
  /** --gpus as given: none, all, 2, device=0 */
  gpus: string;
  age_s: number | null;
  /** Known only where the server itself drives the session; null otherwise. */
  idle_s: number | null;
  idle_timeout_s: number | null;
  owner_pid: string;
  owner_host: string;
  /** What its container uses now (docker stats); null where the engine cannot tell. */
  memory_bytes: number | null;
}

export interface IStatus {
  daemon: {
    ok: boolean;
    host: string;
    local?: boolean;
    version?: string;
    /** "Docker", or "Podman" behind the same API */
    engine?: string;
    detail: string;
  };
  base_image: { name: string; present: boolean | null };
  gpu: boolean | null;
  gpu_detail?: string;
  /** Docker hosts a request may name (contexts of the server's user, allowed_hosts). */
  hosts?: string[];
}

export const FINAL_STATUSES = new Set(['done', 'failed', 'cancelled']);

export function post<T>(endPoint: string, body: unknown): Promise<T> {
  return requestAPI<T>(endPoint, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}
