/* The preview's host page: calls tools through the preview server and hosts their widgets the way
 * ChatGPT does, in a sandboxed cross-origin iframe, in the MCP Apps form (JSON-RPC over postMessage)
 * or the legacy form (the window.openai shim). Server-provided strings are only ever set as textContent.
 */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var tools = {};
  var widgetOrigin = "";
  var session = null;  // the widget now shown: {frame, form, tool, input, result, loads}
  var violationsShown = 0;

  function log(kind, text) {
    var item = document.createElement("li");
    item.dataset.kind = kind;
    item.textContent = "[" + kind + "] " + text;
    $("log").appendChild(item);
    $("log").scrollTop = $("log").scrollHeight;  // the log scrolls, never the page (the widget stays put)
  }

  function api(path, body) {
    var options = body === undefined ? {} : {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body)
    };
    return fetch(path, options).then(function (response) {
      return response.json().then(function (answer) {
        if (!response.ok || answer.error) { throw new Error(answer.error || ("HTTP " + response.status)); }
        return answer;
      });
    });
  }

  function meta(tool) { return (tool && tool._meta) || {}; }

  function widgetUri(tool, form) {
    var uri = form === "openai" ? meta(tool)["openai/outputTemplate"] : (meta(tool).ui || {}).resourceUri;
    return typeof uri === "string" && uri.indexOf("ui://") === 0 ? uri : null;
  }

  // Calls -----------------------------------------------------------------------------------------

  function callTool(name, args, form, byWidget) {
    return api("/api/call", { name: name, arguments: args, form: form, byWidget: byWidget })
      .then(function (answer) { return answer.result; });
  }

  function callFromHost() {
    var name = $("tool").value;
    var form = $("form").value;
    var args;
    try {
      args = JSON.parse($("arguments").value || "{}");
      if (!args || typeof args !== "object" || Array.isArray(args)) { throw new Error("not a JSON object"); }
    } catch (error) {
      log("error", "arguments: " + error.message);
      return;
    }
    $("status").textContent = "Calling " + name + "…";
    log("call", "host → server tools/call " + name);
    callTool(name, args, form, false).then(function (result) {
      $("status").textContent = result.isError ? "The tool answered with an error." : "Done.";
      $("result").textContent = JSON.stringify(result, null, 2);
      var uri = widgetUri(tools[name], form);
      if (uri) { mount(uri, form, name, args, result); } else { unmount("This tool has no widget."); }
    }, function (error) {
      $("status").textContent = "The call failed.";
      $("result").textContent = error.message;
      log("error", "tools/call " + name + ": " + error.message);
    });
  }

  function callFromWidget(name, args) {
    log("call", "widget → host tools/call " + name);
    return callTool(name, args || {}, session.form, true).catch(function (error) {
      log("refused", "tools/call " + name + ": " + error.message);
      throw error;
    });
  }

  // The widget ------------------------------------------------------------------------------------

  function unmount(note) {
    session = null;
    var slot = $("widget-slot");
    slot.replaceChildren();
    var paragraph = document.createElement("p");
    paragraph.className = "note";
    paragraph.id = "no-widget";
    paragraph.textContent = note;
    slot.appendChild(paragraph);
  }

  function mount(uri, form, tool, input, result) {
    var frame = document.createElement("iframe");
    frame.id = "widget";
    frame.title = "Widget of " + tool;
    frame.setAttribute("sandbox", "allow-scripts allow-forms");
    frame.src = widgetOrigin + "/widget?form=" + encodeURIComponent(form) + "&uri=" + encodeURIComponent(uri);
    var current = { frame: frame, form: form, tool: tool, input: input, result: result, loads: 0 };
    frame.addEventListener("load", function () {
      current.loads += 1;
      if (session !== current) { return; }
      if (current.loads > 1) {  // it navigated away: whatever is there now gets nothing more
        log("error", "the widget navigated; the host stops talking to it");
        session = null;
        return;
      }
      if (form === "openai") { sendGlobals(current); }
    });
    $("widget-slot").replaceChildren(frame);
    session = current;
    log("bridge", "host loads " + uri + " (" + form + ")");
  }

  function post(message) { session.frame.contentWindow.postMessage(message, "*"); }  // sandboxed: opaque origin

  // MCP Apps: JSON-RPC over postMessage.
  function onAppsMessage(message) {
    var isRequest = message.id !== undefined && typeof message.method === "string";
    log("bridge", "widget → host " + (message.method || "response"));
    if (message.method === "ui/initialize" && isRequest) {
      reply(message.id, {
        protocolVersion: (message.params && message.params.protocolVersion) || "2026-01-26",
        hostInfo: { name: "ringfence-preview", version: "1" },
        hostCapabilities: { serverTools: {} },
        hostContext: { theme: "light", displayMode: "inline", locale: "en-US" }
      });
    } else if (message.method === "ui/notifications/initialized") {
      notify("ui/notifications/tool-input", { arguments: session.input });
      notify("ui/notifications/tool-result", session.result);
    } else if (message.method === "tools/call" && isRequest) {
      var params = message.params || {};
      var current = session;
      callFromWidget(params.name, params.arguments).then(function (result) {
        if (session === current) { reply(message.id, result); }
      }, function (error) {
        if (session === current) { post({ jsonrpc: "2.0", id: message.id, error: { code: -32000, message: error.message } }); }
      });
    } else if (isRequest) {
      post({ jsonrpc: "2.0", id: message.id, error: { code: -32601, message: "not supported by this host" } });
    }
  }

  function reply(id, result) {
    log("bridge", "host → widget response " + id);
    post({ jsonrpc: "2.0", id: id, result: result });
  }

  function notify(method, params) {
    log("bridge", "host → widget " + method);
    post({ jsonrpc: "2.0", method: method, params: params });
  }

  // Legacy: the window.openai shim (openai_shim.js) in the widget.
  function sendGlobals(current) {
    log("bridge", "host → widget openai:set_globals");
    post({ type: "openai:set_globals", globals: {
      toolInput: current.input,
      toolOutput: current.result.structuredContent || null,
      toolResponseMetadata: current.result._meta || null,
      widgetState: null
    } });
  }

  function onOpenAIMessage(message) {
    log("bridge", "widget → host " + message.type);
    if (message.type === "openai:callTool") {
      var current = session;
      callFromWidget(message.name, message.args).then(function (result) {
        if (session === current) { post({ type: "openai:callTool:result", id: message.id, result: result }); }
      }, function (error) {
        if (session === current) { post({ type: "openai:callTool:result", id: message.id, error: error.message }); }
      });
    }
  }

  window.addEventListener("message", function (event) {
    if (!session || event.source !== session.frame.contentWindow) { return; }
    var message = event.data;
    if (!message || typeof message !== "object") { return; }
    if (session.form === "mcp-apps" && message.jsonrpc === "2.0") { onAppsMessage(message); }
    if (session.form === "openai" && typeof message.type === "string") { onOpenAIMessage(message); }
  });

  // CSP violations, as the preview server received them -------------------------------------------

  function pollViolations() {
    api("/api/violations").then(function (answer) {
      answer.violations.slice(violationsShown).forEach(function (violation) {
        log("violation", violation.directive + " blocked " + violation.blocked);
      });
      violationsShown = answer.violations.length;
    }, function () {});
  }

  // Start -----------------------------------------------------------------------------------------

  function describe() {
    var tool = tools[$("tool").value];
    $("description").textContent = (tool && tool.description) || "";
  }

  var requested = new URLSearchParams(window.location.search).get("form");
  if (requested === "openai" || requested === "mcp-apps") { $("form").value = requested; }
  $("tool").addEventListener("change", describe);
  $("call").addEventListener("click", callFromHost);
  // The log shows the violations reported from now on (earlier ones stay readable at /api/violations).
  api("/api/violations").then(function (answer) {
    violationsShown = answer.violations.length;
    window.setInterval(pollViolations, 1000);
    return api("/api/tools");
  }).then(function (answer) {
    widgetOrigin = answer.widgetOrigin;
    answer.tools.forEach(function (tool) {
      tools[tool.name] = tool;
      var option = document.createElement("option");
      option.value = tool.name;
      option.textContent = tool.name;
      $("tool").appendChild(option);
    });
    describe();
    document.body.dataset.ready = "true";
    log("bridge", "listed " + answer.tools.length + " tools");
  }, function (error) {
    log("error", "tools/list: " + error.message);
  });
})();
