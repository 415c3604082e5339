/* The one module entry of every page (base.html): start the page's components. */
import { initAll } from "./init.mjs";

initAll();
