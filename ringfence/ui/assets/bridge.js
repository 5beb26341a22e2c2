/* ringfence's widget bridge: one small API on every host, added to each widget by ringfence.
 *
 *   ringfence.onData(fn)          fn({input, output, meta, result}) whenever the host delivers the tool's
 *                                 input or result (output = structuredContent, meta = _meta, which the
 *                                 model never sees)
 *   ringfence.callTool(name, args)  a Promise of the call's result; the server checks it like any call
 *   ringfence.host                "openai" (ChatGPT's window.openai) or "mcp-apps" (JSON-RPC over postMessage)
 *
 * Whatever the widget keeps with window.openai.setWidgetState is shown to the model: keep secrets out.
 */
(function () {
  "use strict";
  if (window.ringfence) { return; }
  var listeners = [];
  var state = { input: null, output: null, meta: null, result: null };
  var pending = {};
  var nextId = 1;

  function emit() {
    listeners.forEach(function (fn) {
      try { fn(state); } catch (error) { console.error(error); }
    });
  }

  function fromOpenAI() {
    var openai = window.openai;
    state.input = openai.toolInput || null;
    state.output = openai.toolOutput || null;
    state.meta = openai.toolResponseMetadata || null;
    emit();
  }

  function send(message) { window.parent.postMessage(message, "*"); }

  function request(method, params) {
    return new Promise(function (resolve, reject) {
      var id = nextId++;
      pending[id] = { resolve: resolve, reject: reject };
      send({ jsonrpc: "2.0", id: id, method: method, params: params });
    });
  }

  function onMessage(event) {
    if (event.source !== window.parent) { return; }
    var message = event.data;
    if (!message || message.jsonrpc !== "2.0") { return; }
    if (message.id !== undefined && pending[message.id]) {
      var waiter = pending[message.id];
      delete pending[message.id];
      if (message.error) { waiter.reject(new Error(message.error.message || "the host refused the request")); }
      else { waiter.resolve(message.result); }
      return;
    }
    if (message.method === "ui/notifications/tool-input") {
      state.input = (message.params || {}).arguments || null;
      emit();
    } else if (message.method === "ui/notifications/tool-result") {
      var result = message.params || {};
      state.result = result;
      state.output = result.structuredContent || null;
      state.meta = result._meta || null;
      emit();
    }
  }

  var bridge = {
    host: window.openai ? "openai" : "mcp-apps",
    onData: function (fn) {
      listeners.push(fn);
      if (state.input !== null || state.output !== null || state.meta !== null) { fn(state); }
    },
    callTool: function (name, args) {
      if (window.openai) { return Promise.resolve(window.openai.callTool(name, args || {})); }
      return request("tools/call", { name: name, arguments: args || {} });
    }
  };
  window.ringfence = bridge;

  if (window.openai) {
    window.addEventListener("openai:set_globals", fromOpenAI);
    fromOpenAI();
  } else {
    window.addEventListener("message", onMessage);
    request("ui/initialize", {
      appInfo: { name: "ringfence-widget", version: "1" },
      appCapabilities: {},
      protocolVersion: "2026-01-26"
    }).then(function () {
      send({ jsonrpc: "2.0", method: "ui/notifications/initialized", params: {} });
    }, function (error) { console.error(error); });
  }
})();
