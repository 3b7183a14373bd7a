import { LabIcon } from '@jupyterlab/ui-components';

/** A box with a play triangle: a notebook that runs in its own container. */
const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 1.8 2.5 6.6v10.8L12 22.2l9.5-4.8V6.6L12 1.8zm0 2.2 7.1 3.6L12 11.2 4.9 7.6 12 4zM4.5 9.2l6.5 3.3v7.1l-6.5-3.3V9.2zm8.5 10.4v-7.1l6.5-3.3v7.1L13 19.6z"/>
    <path d="M9.2 13.4v4.4l3.6-2.2z"/>
  </g>
</svg>`;

export const mlboxIcon = new LabIcon({ name: 'jupyter-mlbox:box', svgstr });
