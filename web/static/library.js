// The Documents page's 'Add paper' form: uploads with the visitor's API key, shows progress, then the list.
(function () {
  "use strict";
  var form = document.getElementById("add-paper");
  if (!form) return;
  var bar = document.getElementById("add-progress");
  var status = document.getElementById("add-status");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = document.getElementById("add-file").files[0];
    var key = document.getElementById("add-key").value;
    if (!file || !key) return;
    var body = new FormData();
    body.append("file", file);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/documents");
    xhr.setRequestHeader("X-API-Key", key);
    bar.hidden = false;
    bar.value = 0;
    status.textContent = "Uploading " + file.name + "…";
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.upload.addEventListener("load", function () {
      bar.removeAttribute("value"); // indeterminate while the server reads, embeds and swaps the index
      status.textContent = "Indexing " + file.name + " (reading, embedding, swapping in)…";
    });
    xhr.addEventListener("load", function () {
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      bar.hidden = true;
      if (xhr.status === 201 || xhr.status === 200) {
        var embedded = data && data.change ? data.change.passages_embedded : 0;
        status.textContent = (xhr.status === 201 ? "Added " : "Already indexed: ") + data.id +
          (xhr.status === 201 ? " (" + embedded + " passages embedded); it is searchable now." : ".");
        window.setTimeout(function () { window.location.reload(); }, 1500);
      } else {
        status.textContent = "Refused (" + xhr.status + "): " +
          (data && data.error ? data.error.message : xhr.statusText);
      }
    });
    xhr.addEventListener("error", function () {
      bar.hidden = true;
      status.textContent = "The upload failed: the server could not be reached.";
    });
    xhr.send(body);
  });
})();
