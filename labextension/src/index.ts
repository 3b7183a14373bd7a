import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { mlboxIcon } from './icon';
import { MlboxPanel } from './panel';

namespace CommandIDs {
  export const run = 'mlbox:run-notebook';
  export const build = 'mlbox:build-notebook';
  export const exportImage = 'mlbox:export-notebook';
  export const open = 'mlbox:open-panel';
}

/** The document path of a main-area widget when it shows a notebook. */
function notebookPathOf(widget: Widget | null): string | null {
  const context = widget ? (widget as any).context : null;
  const path: unknown = context && context.path;
  return typeof path === 'string' && path.endsWith('.ipynb') ? path : null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlbox:plugin',
  description: 'MLBox: build, run and export notebooks as Docker images.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell,
    palette: ICommandPalette | null
  ) => {
    let lastNotebook: string | null = null;
    const currentNotebook = (): string | null =>
      notebookPathOf(labShell.currentWidget) ?? lastNotebook;

    const panel = new MlboxPanel({
      currentNotebook,
      saveNotebook: async (path: string) => {
        for (const widget of labShell.widgets('main')) {
          const context = (widget as any).context;
          if (notebookPathOf(widget) === path && context?.model?.dirty) {
            await context.save();
          }
        }
      },
      open: (path: string) => {
        void app.commands.execute('docmanager:open', { path });
      }
    });
    panel.title.caption = 'MLBox';
    labShell.add(panel, 'left', { rank: 650 });

    // re-read the requirements whenever a notebook is saved
    const watched = new WeakSet<object>();
    const watchSaves = (widget: Widget | null) => {
      const context = widget ? (widget as any).context : null;
      if (!context || !context.fileChanged || watched.has(context)) {
        return;
      }
      watched.add(context);
      context.fileChanged.connect(() => {
        if (context.path === currentNotebook()) {
          void panel.refreshRequirements();
        }
      });
    };

    const follow = () => {
      const path = notebookPathOf(labShell.currentWidget);
      watchSaves(labShell.currentWidget);
      if (path) {
        lastNotebook = path;
        panel.setNotebook(path);
      } else if (lastNotebook) {
        // the last notebook was closed: forget it
        const stillOpen = Array.from(labShell.widgets('main')).some(
          widget => notebookPathOf(widget) === lastNotebook
        );
        if (!stillOpen) {
          lastNotebook = null;
          panel.setNotebook(null);
        }
      }
    };
    labShell.currentChanged.connect(follow);
    app.restored.then(follow);

    const withNotebook = (action: (path: string) => unknown) => () => {
      const path = currentNotebook();
      if (path) {
        labShell.activateById(panel.id);
        return action(path);
      }
    };

    app.commands.addCommand(CommandIDs.run, {
      label: 'Run Notebook in Container',
      caption: 'Execute the whole notebook in a Docker container built from its imports',
      icon: mlboxIcon,
      isEnabled: () => currentNotebook() !== null,
      execute: withNotebook(path => panel.startJob('runs', path))
    });
    app.commands.addCommand(CommandIDs.build, {
      label: 'Build Docker Image for Notebook',
      caption: 'Build (or reuse) the image with the notebook’s inferred requirements',
      isEnabled: () => currentNotebook() !== null,
      execute: withNotebook(path => panel.startJob('builds', path))
    });
    app.commands.addCommand(CommandIDs.exportImage, {
      label: 'Export Notebook as Docker Image…',
      caption: 'Build an image that executes this notebook when run',
      isEnabled: () => currentNotebook() !== null,
      execute: withNotebook(path => panel.exportNotebook(path))
    });
    app.commands.addCommand(CommandIDs.open, {
      label: 'Show MLBox Panel',
      execute: () => labShell.activateById(panel.id)
    });

    if (palette) {
      for (const command of [
        CommandIDs.run,
        CommandIDs.build,
        CommandIDs.exportImage,
        CommandIDs.open
      ]) {
        palette.addItem({ command, category: 'MLBox' });
      }
    }
  }
};

export default plugin;
