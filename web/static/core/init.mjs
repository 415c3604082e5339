/*
 * The data-module initialiser (GOV.UK Frontend's createAll is the model): each element with
 * data-module="name" gets one instance of the component registered under that name
 * (core/components.mjs), marked data-name-init once it has started. A component that fails
 * to load or to start is logged and does not stop the others.
 */
import { components } from "./components.mjs";

/** Start `Component` (a class with a static moduleName) on its elements in scope; new instances. */
export function createAll(Component, scope = document) {
  const name = Component.moduleName;
  const flag = `data-${name}-init`;
  const instances = [];
  for (const root of roots(scope, `[data-module="${CSS.escape(name)}"]`)) {
    if (root.hasAttribute(flag)) {
      continue;
    }
    try {
      instances.push(new Component(root));
      root.setAttribute(flag, "");
    } catch (error) {
      console.error(`Doorstep: the ${name} component did not start on`, root, error);
    }
  }
  return instances;
}

/** Start every registered component found in scope (the page by default); new instances. */
export async function initAll(scope = document) {
  const names = new Set(roots(scope, "[data-module]").map((root) => root.getAttribute("data-module")));
  const started = await Promise.all([...names].map((name) => startAll(name, scope)));
  return started.flat();
}

async function startAll(name, scope) {
  const entry = components.get(name);
  if (!entry) {
    console.error(`Doorstep: no component is registered as "${name}"`);
    return [];
  }
  let Component = entry;
  if (typeof entry !== "function") {
    try {
      Component = (await entry.load()).default;
    } catch (error) {
      console.error(`Doorstep: the ${name} component did not load`, error);
      return [];
    }
  }
  if (Component.moduleName !== name) {
    console.error(`Doorstep: "${name}" is registered with a component named "${Component.moduleName}"`);
    return [];
  }
  return createAll(Component, scope);
}

function roots(scope, selector) {
  const found = [...scope.querySelectorAll(selector)];
  return scope instanceof Element && scope.matches(selector) ? [scope, ...found] : found;
}
