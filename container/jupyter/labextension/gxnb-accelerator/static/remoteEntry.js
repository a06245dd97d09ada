/*
 * gxnb-accelerator: a JupyterLab status bar item that says whether this session runs on a GPU
 * (its name, use and memory) or on the CPU, read from the server's /gxnb/accelerator
 * (gxnb.accelerator), with the node's maintenance notice when an operator drains the node (the
 * time the session ends; gxnb.node_notice); and, when Galaxy shows the session inside its own page (a frame between
 * its tool panel and the history), the file browser folded away at the start so that the
 * notebook gets the frame's width. Hand-written in plain JavaScript so that the image needs no
 * Node.js build.
 *
 * It is a module-federation container, the protocol JupyterLab's bootstrap.js speaks to every
 * prebuilt extension: loading this script sets window._JUPYTERLAB["gxnb-accelerator"];
 * JupyterLab calls init(sharedScope) with its shared modules, then get("./extension") for a
 * factory of the module whose default export is the plugin. The plugin takes JupyterLab's own
 * instances of the packages it uses (the status bar's token, Lumino's Widget, the server
 * connection) from that shared scope, so the token it requires is the one the status bar
 * provides.
 */
var _JUPYTERLAB;
(function () {
  'use strict';

  var NAME = 'gxnb-accelerator';
  var ENDPOINT = 'gxnb/accelerator';
  var REFRESH_MS = 5000; // a GPU's use changes
  var NOTICE_REFRESH_MS = 30000; // a CPU session: only a maintenance notice can change
  // Below this width, an open left sidebar leaves the notebook too little room (Galaxy's centre
  // panel in a 1400 px window is about 750 px: the file browser left the notebook about 330).
  var NARROW_FRAME_PX = 1000;
  var sharedScope = null;

  function compareVersions(a, b) {
    var left = a.split(/[.+-]/), right = b.split(/[.+-]/);
    for (var i = 0; i < Math.max(left.length, right.length); i++) {
      var x = parseInt(left[i], 10) || 0, y = parseInt(right[i], 10) || 0;
      if (x !== y) return x - y;
    }
    return 0;
  }

  // The module JupyterLab shares under this name: the one already loaded, else the newest.
  function sharedModule(name) {
    var versions = sharedScope && sharedScope[name];
    if (!versions || !Object.keys(versions).length) {
      return Promise.reject(new Error(NAME + ': JupyterLab does not share ' + name));
    }
    var names = Object.keys(versions).sort(compareVersions);
    var loaded = names.filter(function (v) { return versions[v].loaded; });
    var candidates = loaded.length ? loaded : names;
    var entry = versions[candidates[candidates.length - 1]];
    return Promise.resolve(entry.get()).then(function (factory) { return factory(); });
  }

  function label(info) {
    if (!info.gpu) return 'CPU only';
    var devices = info.devices || [];
    var first = devices[0] || {};
    var count = devices.length > 1 ? devices.length + ' GPUs' : 'GPU';
    count += (info.share ? ' (shared, ' + info.share + ')' : '') + ': ';
    var use = devices.map(function (d) { return d.utilization_percent; })
      .filter(function (p) { return typeof p === 'number'; });
    var used = devices.reduce(function (sum, d) { return sum + (d.memory_used_gib || 0); }, 0);
    var total = devices.reduce(function (sum, d) { return sum + (d.memory_total_gib || 0); }, 0);
    var text = count + (first.name || 'unnamed');
    if (use.length) text += ' · ' + Math.max.apply(null, use) + '%';
    if (total) text += ' · ' + used.toFixed(1) + '/' + total.toFixed(0) + ' GiB';
    return text;
  }

  function createPlugin(statusbar, widgets, services, coreutils) {
    return {
      id: NAME + ':status',
      description: 'Says in the status bar whether the session runs on a GPU or on the CPU.',
      autoStart: true,
      requires: [statusbar.IStatusBar],
      activate: function (app, statusBar) {
        var item = new widgets.Widget();
        item.id = 'gxnb-accelerator-status';
        item.addClass('jp-StatusBar-TextItem');
        item.addClass('gxnb-accelerator-status');
        item.node.textContent = 'GPU: checking…';
        var settings = services.ServerConnection.makeSettings();
        var url = coreutils.URLExt.join(settings.baseUrl, ENDPOINT);

        function show(info) {
          var text = label(info), title = info.summary || '', notice = info.notice;
          var usage = info.usage;
          if (usage) {
            // The user's GPU-hours this month (this session's included), of their quota where one applies.
            if (usage.quota_gpu_hours) {
              text += ' · ' + usage.used_gpu_hours.toFixed(2) + '/' + usage.quota_gpu_hours + ' GPU-h';
            }
            title += '\n' + usage.text;
          }
          if (notice) {
            var at = new Date(notice.ends_at * 1000);
            text += ' · ⚠ node maintenance: session ends at ' +
              at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
            title = notice.text + '\n' + title;
          }
          item.node.textContent = text;
          item.node.title = title;
          item.node.dataset.gpu = info.gpu ? 'true' : 'false';
          item.node.dataset.notice = notice ? 'true' : 'false';
          item.node.style.fontWeight = notice ? 'bold' : '';
          window.setTimeout(refresh, info.gpu ? REFRESH_MS : NOTICE_REFRESH_MS);
        }
        function refresh() {
          services.ServerConnection.makeRequest(url, {}, settings)
            .then(function (response) {
              if (!response.ok) throw new Error(url + ' answered ' + response.status);
              return response.json();
            })
            .then(show)
            .catch(function (error) {
              item.node.textContent = 'GPU: unknown';
              item.node.title = 'The server could not say which accelerator this session has: ' + error.message;
              console.warn(NAME, error);
            });
        }
        // Before the kernel's state and the language server's (both rank 1), whose texts grow: in
        // a narrow frame the items at the end of the status bar are cut off, and this one must
        // stay in sight.
        statusBar.registerStatusItem(NAME + ':status', { item: item, align: 'left', rank: 0.5 });
        refresh();
      }
    };
  }

  // Once, when the session opens in a narrow frame: the person can open the sidebar again, and
  // a session opened in its own tab keeps JupyterLab's usual layout.
  function inNarrowFrame() {
    var framed;
    try {
      framed = window.self !== window.top;
    } catch (error) {
      framed = true; // a cross-origin parent may refuse the comparison
    }
    return framed && window.innerWidth < NARROW_FRAME_PX;
  }

  var roomyNotebookPlugin = {
    id: NAME + ':roomy-notebook-in-a-frame',
    description: 'Folds the left sidebar away when the session opens in a narrow frame (Galaxy\'s centre panel).',
    autoStart: true,
    activate: function (app) {
      app.restored.then(function () {
        if (inNarrowFrame() && typeof app.shell.collapseLeft === 'function') app.shell.collapseLeft();
      });
    }
  };

  _JUPYTERLAB = typeof _JUPYTERLAB === 'undefined' ? {} : _JUPYTERLAB;
  _JUPYTERLAB[NAME] = {
    init: function (scope) {
      sharedScope = scope;
    },
    get: function (module) {
      if (module !== './extension') {
        return Promise.reject(new Error(NAME + ' has no module ' + module));
      }
      return Promise.all([
        sharedModule('@jupyterlab/statusbar'),
        sharedModule('@lumino/widgets'),
        sharedModule('@jupyterlab/services'),
        sharedModule('@jupyterlab/coreutils')
      ]).then(function (modules) {
        var plugin = createPlugin.apply(null, modules);
        return function () { return { __esModule: true, default: [plugin, roomyNotebookPlugin] }; };
      });
    }
  };
})();
