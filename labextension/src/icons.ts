/** The plugin's own icon: ✦, the ask control. */
import { LabIcon } from '@jupyterlab/ui-components';

export const askIcon = new LabIcon({
  name: 'cellmage:ask',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><path class="jp-icon3" fill="#616161" ' +
    'd="M12 2l1.9 5.6L19.5 9.5l-5.6 1.9L12 17l-1.9-5.6L4.5 9.5l5.6-1.9zM19 14l.9 2.6 2.6.9-2.6.9L19 21l-.9-2.6-2.6-.9 2.6-.9z"/></svg>'
});
