/** A notebook from elsewhere cannot drive the page (collaboration off; see ../hostile.ts). */
import { hostileNotebookTests } from '../hostile';

hostileNotebookTests(() => 'http://127.0.0.1:8891/_fake');
