import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  FINAL_STATUSES,
  IImage,
  IJob,
  IRequirementsReply,
  ISession,
  IStatus,
  MlboxApiError,
  post,
  requestAPI
} from './api';
import {
  formatAge,
  formatBytes,
  formatSeconds,
  imageNameFor,
  jobReport,
  lockLabel,
  plainText
} from './format';
import { mlboxIcon } from './icon';

/** What the panel needs from the application. */
export interface IPanelHost {
  /** Path (relative to the server root) of the notebook the user works on, or null. */
  currentNotebook(): string | null;
  /** Save the notebook at `path` if it has unsaved changes. */
  saveNotebook(path: string): Promise<void>;
  /** Open a file in JupyterLab. */
  open(path: string): void;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: { [key: string]: string } = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') {
      node.className = value;
    } else {
      node.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child);
    }
  }
  return node;
}

/**
 * The MLBox sidebar: the current notebook's requirements and image, jobs, images, daemon status.
 * Plain DOM, re-rendered from the last answers of the REST API.
 */
export class MlboxPanel extends Widget {
  constructor(private host: IPanelHost) {
    super();
    this.id = 'jupyter-mlbox-panel';
    this.addClass('jp-MlboxPanel');
    this.title.icon = mlboxIcon;
    this.title.caption = 'MLBox: run notebooks in containers';

    this.statusNode = el('div', { class: 'jp-MlboxPanel-status' }, 'checking Docker…');
    this.notebookNode = el('div', { class: 'jp-MlboxPanel-notebook' });
    this.jobsNode = el('div', { class: 'jp-MlboxPanel-jobs' });
    this.imagesNode = el('div', { class: 'jp-MlboxPanel-images' });
    this.sessionsNode = el('div', { class: 'jp-MlboxPanel-sessions' });
    const refresh = el(
      'button',
      { class: 'jp-MlboxPanel-refresh', title: 'Refresh everything' },
      '⟳'
    );
    refresh.onclick = () => void this.refreshAll();
    this.node.append(
      el('header', {}, el('h2', {}, 'MLBox'), refresh),
      this.statusNode,
      el('h3', {}, 'Notebook'),
      this.notebookNode,
      el('h3', {}, 'Jobs'),
      this.jobsNode,
      el('h3', {}, 'Sessions'),
      this.sessionsNode,
      el('h3', {}, 'Images'),
      this.imagesNode
    );
    this.renderNotebook();
    this.renderJobs();
    this.renderImages();
    this.renderSessions();
  }

  /** The user switched notebooks (or closed the last one). */
  setNotebook(path: string | null): void {
    if (path === this.notebookPath) {
      return;
    }
    this.notebookPath = path;
    this.requirements = null;
    this.requirementsError = '';
    this.renderNotebook();
    void this.refreshRequirements();
  }

  async refreshAll(): Promise<void> {
    await Promise.all([
      this.refreshStatus(),
      this.refreshRequirements(),
      this.refreshJobs(),
      this.refreshImages(),
      this.refreshSessions()
    ]);
  }

  async refreshStatus(): Promise<void> {
    try {
      this.status = await requestAPI<IStatus>('status');
      this.statusError = '';
    } catch (error) {
      this.statusError = String((error as Error).message);
    }
    this.renderStatus();
  }

  async refreshRequirements(): Promise<void> {
    const path = this.notebookPath;
    if (!path) {
      return;
    }
    this.loadingRequirements = true;
    this.renderNotebook();
    try {
      const reply = await requestAPI<IRequirementsReply>(
        `requirements?path=${encodeURIComponent(path)}`
      );
      if (path === this.notebookPath) {
        this.requirements = reply;
        this.requirementsError = '';
      }
    } catch (error) {
      if (path === this.notebookPath) {
        this.requirements = null;
        this.requirementsError = String((error as Error).message);
      }
    }
    this.loadingRequirements = false;
    this.renderNotebook();
  }

  async refreshJobs(): Promise<void> {
    try {
      const reply = await requestAPI<{ jobs: IJob[] }>('jobs');
      const finishedNow = reply.jobs.filter(
        job =>
          FINAL_STATUSES.has(job.status) &&
          this.jobs.some(old => old.id === job.id && !FINAL_STATUSES.has(old.status))
      );
      this.jobs = reply.jobs;
      for (const id of this.expanded) {
        if (this.jobs.some(job => job.id === id)) {
          await this.refreshLog(id);
        }
      }
      this.jobsError = '';
      if (finishedNow.length) {
        void this.refreshImages();
        void this.refreshRequirements();
      }
    } catch (error) {
      this.jobsError = String((error as Error).message);
    }
    this.renderJobs();
  }

  async refreshImages(): Promise<void> {
    try {
      const reply = await requestAPI<{ images: IImage[] }>('images');
      this.images = reply.images;
      this.imagesError = '';
    } catch (error) {
      this.images = [];
      this.imagesError =
        error instanceof MlboxApiError && error.status === 503
          ? 'Docker is unreachable: no images to show (see the status above).'
          : String((error as Error).message);
    }
    this.renderImages();
  }

  /** Every kernel's `%%mlbox --session` containers on the server's Docker host. */
  async refreshSessions(): Promise<void> {
    try {
      const reply = await requestAPI<{ sessions: ISession[] }>('sessions');
      this.sessions = reply.sessions;
      this.sessionsError = '';
    } catch (error) {
      this.sessions = [];
      this.sessionsError =
        error instanceof MlboxApiError && error.status === 503
          ? 'Docker is unreachable: no sessions to show (see the status above).'
          : String((error as Error).message);
    }
    this.renderSessions();
  }

  /** Start a build, a run or an export of the notebook at `path`. */
  async startJob(
    kind: 'builds' | 'runs' | 'exports',
    path: string,
    extra: { [key: string]: unknown } = {}
  ): Promise<IJob | null> {
    try {
      await this.host.saveNotebook(path);
      const job = await post<IJob>(kind, { path, ...extra });
      this.jobs = [job, ...this.jobs.filter(other => other.id !== job.id)];
      this.renderJobs();
      this.schedulePoll(300);
      return job;
    } catch (error) {
      void showErrorMessage('MLBox', (error as Error).message);
      return null;
    }
  }

  /** Ask for an image name (and whether to push), then export. */
  async exportNotebook(path: string): Promise<IJob | null> {
    const body = new ExportForm(path);
    const result = await showDialog({
      title: 'Export Notebook as Docker Image',
      body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Export' })],
      focusNodeSelector: 'input[name="tag"]'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    return this.startJob('exports', path, result.value);
  }

  protected onAfterAttach(): void {
    void this.refreshAll();
    this.schedulePoll(0);
  }

  protected onBeforeDetach(): void {
    window.clearTimeout(this.pollTimer);
  }

  dispose(): void {
    window.clearTimeout(this.pollTimer);
    super.dispose();
  }

  /** Poll jobs every second while one is active, every 5 s otherwise. */
  private schedulePoll(delay: number): void {
    window.clearTimeout(this.pollTimer);
    this.pollTimer = window.setTimeout(async () => {
      await Promise.all([this.refreshJobs(), this.refreshSessions()]);
      if (this.isDisposed) {
        return;
      }
      const active = this.jobs.some(job => !FINAL_STATUSES.has(job.status));
      this.schedulePoll(active ? 1000 : 5000);
    }, delay);
  }

  private async refreshLog(id: string): Promise<void> {
    try {
      const job = await requestAPI<IJob>(`jobs/${id}`);
      this.logs.set(id, job.log || []);
    } catch {
      this.logs.delete(id);
    }
  }

  private async cancelJob(id: string): Promise<void> {
    try {
      await requestAPI<IJob>(`jobs/${id}`, { method: 'DELETE' });
    } catch (error) {
      if (!(error instanceof MlboxApiError && error.status === 409)) {
        void showErrorMessage('MLBox', (error as Error).message);
      }
    }
    await this.refreshJobs();
  }

  private async deleteImage(tag: string): Promise<void> {
    const answer = await showDialog({
      title: 'Delete image',
      body: `Delete ${tag}?`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await requestAPI<void>(`images/${encodeURIComponent(tag)}`, {
        method: 'DELETE'
      });
    } catch (error) {
      void showErrorMessage('MLBox', (error as Error).message);
    }
    await Promise.all([this.refreshImages(), this.refreshRequirements()]);
  }

  /**
   * Stop or restart: both remove the container (the kernel that drives the session is the
   * notebook's, not this server's); a restart is the next `%%mlbox --session` cell starting a
   * fresh one, rebuilding the image when the notebook's imports changed.
   */
  private async stopSession(session: ISession, restart = false): Promise<void> {
    const verb = restart ? 'Restart' : 'Stop';
    const answer = await showDialog({
      title: `${verb} session`,
      body: restart
        ? `Restart session ${session.name} of ${session.notebook}? Its container is removed and the state of its kernel is lost; the next %%mlbox --session cell starts it fresh (rebuilding the image if the notebook's imports changed).`
        : `Stop session ${session.name} of ${session.notebook}? Its container is removed and the state of its kernel is lost; the next %%mlbox --session cell starts a new one.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: verb })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await requestAPI<void>(`sessions/${encodeURIComponent(session.key)}`, {
        method: 'DELETE'
      });
    } catch (error) {
      if (!(error instanceof MlboxApiError && error.status === 404)) {
        void showErrorMessage('MLBox', (error as Error).message);
      }
    }
    await this.refreshSessions();
  }

  // --- rendering --------------------------------------------------------------------------------

  private renderStatus(): void {
    const node = this.statusNode;
    node.replaceChildren();
    node.classList.remove('jp-mod-ok', 'jp-mod-error');
    if (this.statusError) {
      node.classList.add('jp-mod-error');
      node.append(`MLBox server extension not reachable: ${this.statusError}`);
      return;
    }
    const status = this.status;
    if (!status) {
      node.append('checking Docker…');
      return;
    }
    if (!status.daemon.ok) {
      node.classList.add('jp-mod-error');
      node.append(
        el('strong', {}, 'Docker is unreachable. '),
        status.daemon.detail,
        el('div', { class: 'jp-MlboxPanel-hint' },
          'Start Docker (or set DOCKER_HOST for the Jupyter server), then press ⟳.')
      );
      return;
    }
    node.classList.add('jp-mod-ok');
    const base = status.base_image;
    node.append(
      el('span', { class: 'jp-MlboxPanel-dot' }),
      `${status.daemon.engine ?? 'Docker'} ${status.daemon.version} (${status.daemon.local ? 'local' : 'remote'}: ${status.daemon.host})`,
      el('br'),
      `base ${base.name} ${base.present ? '✓' : '✗ missing'} · GPU: `,
      status.gpu ? 'available' : status.gpu === false ? 'none (CPU only)' : 'unknown'
    );
  }

  private renderNotebook(): void {
    const node = this.notebookNode;
    node.replaceChildren();
    const path = this.notebookPath;
    if (!path) {
      node.append(
        el('p', { class: 'jp-MlboxPanel-empty' }, 'Open a notebook to see what it needs.')
      );
      return;
    }
    node.append(el('div', { class: 'jp-MlboxPanel-path', title: path }, path));
    const reply = this.requirements;
    if (this.requirementsError) {
      node.append(el('div', { class: 'jp-MlboxPanel-error' }, this.requirementsError));
    } else if (!reply) {
      node.append(el('p', { class: 'jp-MlboxPanel-empty' }, 'reading the imports…'));
    } else {
      const list = el('ul', { class: 'jp-MlboxPanel-requirements' });
      if (!reply.requirements.length) {
        list.append(el('li', { class: 'jp-MlboxPanel-empty' }, 'standard library only'));
      }
      for (const req of reply.requirements) {
        const unverified = req.verified === false;
        list.append(
          el(
            'li',
            {
              title: req.imports.length ? `import ${req.imports.join(', ')}` : '',
              ...(unverified ? { class: 'jp-mod-unverified' } : {})
            },
            el('code', {}, req.requirement),
            el(
              'span',
              {
                class: `jp-MlboxPanel-origin jp-mod-${req.origin}`,
                ...(req.where ? { title: req.where } : {})
              },
              unverified ? 'unverified guess' : req.origin
            )
          )
        );
      }
      node.append(list);
      if (reply.report) {
        node.append(this.renderReport(reply));
      }
      for (const warning of reply.warnings) {
        node.append(el('div', { class: 'jp-MlboxPanel-warning' }, `⚠ ${warning}`));
      }
      const image = reply.image;
      const state =
        image.exists === true
          ? el('span', { class: 'jp-MlboxPanel-badge jp-mod-ok' }, 'up to date')
          : image.exists === false
            ? el('span', { class: 'jp-MlboxPanel-badge jp-mod-warn' }, 'needs build')
            : el('span', { class: 'jp-MlboxPanel-badge' }, 'Docker unreachable');
      node.append(
        el('div', { class: 'jp-MlboxPanel-image' }, 'Image ', el('code', {}, image.tag), ' ', state)
      );
    }
    const buttons = el('div', { class: 'jp-MlboxPanel-buttons' });
    const add = (label: string, title: string, action: () => void, accept = false) => {
      const button = el(
        'button',
        { class: `jp-Button ${accept ? 'jp-mod-accept' : 'jp-mod-reject'} jp-mod-styled`, title },
        label
      );
      button.onclick = action;
      buttons.append(button);
    };
    add('Build', 'Build (or reuse) the image for this notebook', () =>
      void this.startJob('builds', path, this.requestOptions(false))
    );
    add(
      'Run in container',
      'Execute the whole notebook in a container; writes <name>.mlbox.ipynb',
      () =>
        void this.startJob('runs', path, this.requestOptions(true)),
      true
    );
    add('Export…', 'Export the notebook as a Docker image that runs it', () =>
      void this.exportNotebook(path)
    );
    node.append(buttons);
    const allowErrors = el('input', { type: 'checkbox', name: 'allow-errors' });
    allowErrors.checked = this.allowErrors;
    allowErrors.onchange = () => {
      this.allowErrors = allowErrors.checked;
    };
    node.append(
      el(
        'label',
        {
          class: 'jp-MlboxPanel-allowErrors',
          title: 'Run every cell even after one raises (--allow-errors); the run still fails, listing every error'
        },
        allowErrors,
        ' Run every cell, even after an error'
      )
    );
    const hosts = this.status?.hosts ?? [];
    if (hosts.length) {
      // where builds and runs go: the server's own daemon, or one its owner allowed
      const select = el('select', { name: 'host', class: 'jp-MlboxPanel-host' });
      for (const host of ['', ...hosts]) {
        const option = el('option', { value: host }, host || "the server's Docker daemon");
        option.selected = host === this.dockerHost;
        select.append(option);
      }
      select.onchange = () => {
        this.dockerHost = select.value;
      };
      node.append(el('label', { title: 'The Docker daemon builds and runs go to (--host)' },
        'Docker host ', select));
    }
    if (this.loadingRequirements) {
      node.classList.add('jp-mod-loading');
    } else {
      node.classList.remove('jp-mod-loading');
    }
  }

  private renderJobs(): void {
    const node = this.jobsNode;
    node.replaceChildren();
    if (this.jobsError) {
      node.append(el('div', { class: 'jp-MlboxPanel-error' }, this.jobsError));
    }
    if (!this.jobs.length) {
      node.append(el('p', { class: 'jp-MlboxPanel-empty' }, 'No jobs yet.'));
      return;
    }
    for (const job of this.jobs) {
      const final = FINAL_STATUSES.has(job.status);
      const row = el('div', {
        class: `jp-MlboxPanel-job jp-mod-${job.status}`,
        'data-job-id': job.id,
        'data-status': job.status
      });
      const bar = el('div', { class: 'jp-MlboxPanel-progress' }, el('div', {
        class: 'jp-MlboxPanel-progress-fill',
        style: `width: ${Math.round(job.progress * 100)}%`
      }));
      const step = job.step && job.total ? ` · step ${job.step}/${job.total}` : '';
      row.append(
        el(
          'div',
          { class: 'jp-MlboxPanel-job-head' },
          el('span', { class: 'jp-MlboxPanel-job-label', title: job.path }, job.label || job.kind),
          el('span', { class: `jp-MlboxPanel-badge jp-mod-${job.status}` }, job.status)
        ),
        el(
          'div',
          { class: 'jp-MlboxPanel-job-phase' },
          `${job.phase}${step} · ${formatSeconds(job.elapsed)}`
        ),
        bar
      );
      if (job.message && !final) {
        row.append(el('div', { class: 'jp-MlboxPanel-job-message' }, job.message));
      }
      const report = jobReport(job.report);
      if (report) {
        const [head, lines] = report;
        const details = el(
          'details',
          { class: 'jp-MlboxPanel-job-report' },
          el('summary', {}, `plan: ${head}`),
          el('pre', {}, lines.join('\n'))
        );
        details.open = this.openReports.has(job.id);
        details.ontoggle = () => {
          if (details.open) {
            this.openReports.add(job.id);
          } else {
            this.openReports.delete(job.id);
          }
        };
        row.append(details);
      }
      if (job.error) {
        row.append(el('pre', { class: 'jp-MlboxPanel-job-error' }, plainText(job.error)));
      }
      const actions = el('div', { class: 'jp-MlboxPanel-job-actions' });
      const expanded = this.expanded.has(job.id);
      const logButton = el('button', { class: 'jp-MlboxPanel-link' }, expanded ? 'Hide log' : 'Log');
      logButton.onclick = async () => {
        if (this.expanded.has(job.id)) {
          this.expanded.delete(job.id);
        } else {
          this.expanded.add(job.id);
          await this.refreshLog(job.id);
        }
        this.renderJobs();
      };
      actions.append(logButton);
      if (!final) {
        const cancel = el('button', { class: 'jp-MlboxPanel-link jp-mod-cancel' }, 'Cancel');
        cancel.onclick = () => void this.cancelJob(job.id);
        actions.append(cancel);
      }
      const output = job.result && job.result.output_path;
      if (output) {
        const open = el('button', { class: 'jp-MlboxPanel-link jp-mod-open', title: output }, `Open ${output}`);
        open.onclick = () => this.host.open(output);
        actions.append(open);
      }
      if (job.kind === 'export' && job.status === 'done' && job.result) {
        actions.append(
          el('code', { class: 'jp-MlboxPanel-hint' },
            `docker run --rm -v "$PWD/out:/out" ${job.result.tag}`)
        );
      }
      row.append(actions);
      if (expanded) {
        row.append(el('pre', { class: 'jp-MlboxPanel-log' }, plainText((this.logs.get(job.id) || []).join('\n'))));
      }
      node.append(row);
    }
  }

  /** The plan's report before any build: lock, requirement sources, files, system packages,
   * unverified guesses. Every name goes in as text (el appends strings as text nodes). */
  private renderReport(reply: IRequirementsReply): HTMLElement {
    const report = reply.report;
    const box = el(
      'div',
      { class: 'jp-MlboxPanel-report' },
      el('div', { class: 'jp-MlboxPanel-report-head' }, `Before the build: ${report.headline}`),
      el(
        'div',
        { class: `jp-MlboxPanel-lock ${report.lock ? 'jp-mod-locked' : 'jp-mod-unlocked'}` },
        lockLabel(report.lock)
      )
    );
    for (const line of report.lines) {
      if (line.key === 'lock') {
        continue; // said above
      }
      box.append(
        el(
          'div',
          {
            class: `jp-MlboxPanel-report-line jp-mod-${line.key}${line.key === 'unverified' ? ' jp-MlboxPanel-warning' : ''}`
          },
          el('strong', {}, `${line.label}: `),
          line.text
        )
      );
    }
    return box;
  }

  private renderImages(): void {
    const node = this.imagesNode;
    node.replaceChildren();
    if (this.imagesError) {
      node.append(el('div', { class: 'jp-MlboxPanel-error' }, this.imagesError));
      return;
    }
    if (!this.images.length) {
      node.append(el('p', { class: 'jp-MlboxPanel-empty' }, 'No MLBox images yet.'));
      return;
    }
    for (const image of this.images) {
      const remove = el('button', { class: 'jp-MlboxPanel-link jp-mod-cancel', title: `Delete ${image.tag}` }, 'Delete');
      remove.onclick = () => void this.deleteImage(image.tag);
      node.append(
        el(
          'div',
          { class: 'jp-MlboxPanel-imageRow', 'data-tag': image.tag, title: image.requirements.join('\n') },
          el('code', { class: 'jp-MlboxPanel-tag' }, image.tag),
          el(
            'div',
            { class: 'jp-MlboxPanel-meta' },
            `${formatBytes(image.size)} · ${formatAge(image.created)} · ${image.notebook}${image.kind === 'export' ? ' · export' : ''}`,
            remove
          )
        )
      );
    }
  }

  private renderSessions(): void {
    const node = this.sessionsNode;
    node.replaceChildren();
    if (this.sessionsError) {
      node.append(el('div', { class: 'jp-MlboxPanel-error' }, this.sessionsError));
      return;
    }
    if (!this.sessions.length) {
      node.append(
        el('p', { class: 'jp-MlboxPanel-empty' }, 'No sessions (%%mlbox --session starts one).')
      );
      return;
    }
    for (const session of this.sessions) {
      const stop = el(
        'button',
        { class: 'jp-MlboxPanel-link jp-mod-cancel', title: `Stop session ${session.name}` },
        'Stop'
      );
      stop.onclick = () => void this.stopSession(session);
      const restart = el(
        'button',
        { class: 'jp-MlboxPanel-link', title: `Restart session ${session.name}` },
        'Restart'
      );
      restart.onclick = () => void this.stopSession(session, true);
      const facts = [
        session.notebook,
        session.age_s === null ? '' : `up ${formatSeconds(session.age_s)}`,
        session.idle_s === null ? '' : `idle ${formatSeconds(session.idle_s)}`,
        session.gpus === 'none' ? 'CPU' : `GPU ${session.gpus}`,
        session.memory_bytes === null ? '' : `${formatBytes(session.memory_bytes)} memory`
      ].filter(Boolean);
      node.append(
        el(
          'div',
          {
            class: 'jp-MlboxPanel-imageRow jp-MlboxPanel-sessionRow',
            'data-key': session.key,
            title: `container ${session.container}, kernel pid ${session.owner_pid} on ${session.owner_host}`
          },
          el('span', { class: 'jp-MlboxPanel-sessionName' }, session.name),
          ' ',
          el('code', { class: 'jp-MlboxPanel-tag' }, session.image),
          el('div', { class: 'jp-MlboxPanel-meta' }, facts.join(' · '), restart, stop)
        )
      );
    }
  }

  private notebookPath: string | null = null;
  private requirements: IRequirementsReply | null = null;
  private requirementsError = '';
  private loadingRequirements = false;
  private status: IStatus | null = null;
  private statusError = '';
  private jobs: IJob[] = [];
  private jobsError = '';
  private images: IImage[] = [];
  private imagesError = '';
  private sessions: ISession[] = [];
  private sessionsError = '';
  private expanded = new Set<string>();
  private openReports = new Set<string>();
  private allowErrors = false;
  private dockerHost = '';

  /** The request's options: the chosen host, and for runs --allow-errors. */
  private requestOptions(run: boolean): { options?: Record<string, unknown> } {
    const options: Record<string, unknown> = {};
    if (this.dockerHost) {
      options.host = this.dockerHost;
    }
    if (run && this.allowErrors) {
      options.allow_errors = true;
    }
    return Object.keys(options).length ? { options } : {};
  }
  private logs = new Map<string, string[]>();
  private pollTimer = 0;
  private statusNode: HTMLElement;
  private notebookNode: HTMLElement;
  private jobsNode: HTMLElement;
  private imagesNode: HTMLElement;
  private sessionsNode: HTMLElement;
}

/** The body of the export dialog: image name and "push". */
class ExportForm extends Widget {
  constructor(path: string) {
    super();
    this.addClass('jp-MlboxExportForm');
    this.tag = el('input', { name: 'tag', type: 'text', value: imageNameFor(path), class: 'jp-mod-styled' });
    this.push = el('input', { name: 'push', type: 'checkbox' });
    this.node.append(
      el('label', {}, 'Image name ([registry/]name[:tag])', this.tag),
      el('label', { class: 'jp-MlboxExportForm-push' }, this.push, ' Push to the registry named in the tag'),
      el('p', { class: 'jp-MlboxPanel-hint' },
        'Run it with: docker run --rm -v "$PWD/out:/out" IMAGE (the image runs as uid 1000: make out/ writable)')
    );
  }

  getValue(): { tag: string; push: boolean } {
    return { tag: this.tag.value.trim(), push: this.push.checked };
  }

  private tag: HTMLInputElement;
  private push: HTMLInputElement;
}
