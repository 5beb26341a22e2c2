/* A stand-in for ChatGPT's window.openai (the legacy Apps SDK form), injected by `ringfence preview`
 * first in <head>: it gets the globals from the host page and calls tools through it, by postMessage.
 */
(function () {
  "use strict";
  var GLOBALS = ["toolInput", "toolOutput", "toolResponseMetadata", "widgetState", "theme", "displayMode",
                 "locale", "maxHeight"];
  var pending = {};
  var nextId = 1;

  function post(message) { window.parent.postMessage(message, "*"); }

  var openai = {
    toolInput: null, toolOutput: null, toolResponseMetadata: null, widgetState: null,
    theme: "light", displayMode: "inline", locale: "en-US", maxHeight: 600,
    setWidgetState: function (state) {
      openai.widgetState = state;
      post({ type: "openai:setWidgetState", state: state });
      return Promise.resolve();
    },
    callTool: function (name, args) {
      return new Promise(function (resolve, reject) {
        var id = nextId++;
        pending[id] = { resolve: resolve, reject: reject };
        post({ type: "openai:callTool", id: id, name: name, args: args || {} });
      });
    }
  };
  window.openai = openai;

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) { return; }
    var message = event.data;
    if (!message || typeof message.type !== "string") { return; }
    if (message.type === "openai:set_globals") {
      var globals = message.globals || {};
      GLOBALS.forEach(function (name) { if (name in globals) { openai[name] = globals[name]; } });
      window.dispatchEvent(new CustomEvent("openai:set_globals", { detail: { globals: globals } }));
    } else if (message.type === "openai:callTool:result" && pending[message.id]) {
      var waiter = pending[message.id];
      delete pending[message.id];
      if (message.error) { waiter.reject(new Error(message.error)); } else { waiter.resolve(message.result); }
    }
  });
})();
