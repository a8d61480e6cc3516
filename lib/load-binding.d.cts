declare function loadBinding(): { binding: unknown; root: string; error: unknown };
declare namespace loadBinding {
  function root(): string;
}
export = loadBinding;
