// The settings form: server settings → inputs, one changed input → a settings patch.

const $ = (id) => document.getElementById(id);

/** Show the server's settings in the form (the server has the final word on every value). */
export function fillSettings(s) {
  document.querySelectorAll("[data-setting]").forEach((input) => {
    if (input === document.activeElement && input.tagName === "INPUT") return;  // being edited
    const value = s[input.dataset.setting];
    if (input.dataset.setting === "hidden") input.value = value.join(",");
    else if (input.tagName === "SELECT" && input.id === "target") input.value = value || input.value;
    else input.value = value;
    input.classList.remove("bad");
  });
  const upload = s.dataset === "upload";
  document.querySelectorAll(".builtin label").forEach((e) => (e.hidden = upload));
  document.querySelector(".upload-only").hidden = !upload;
  if (upload && s.view.length) {
    $("view-x").value = s.view[0];
    if (s.view[1]) $("view-y").value = s.view[1];
  }
}

/** {setting: value} for one input; text that is not a number is sent as typed so that the
 * server refuses it with a message naming the field. */
export function readSetting(input) {
  const key = input.dataset.setting;
  const raw = input.value.trim();
  let value = raw;
  if (key === "hidden") {
    value = raw === "" ? [] : raw.split(/[,\s]+/).filter(Boolean).map((w) => (/^\d+$/.test(w) ? Number(w) : w));
  } else if (key === "batch_size") {
    value = raw === "" || raw === "full" ? "full" : /^\d+$/.test(raw) ? Number(raw) : raw;
  } else if (input.type === "number") {
    value = raw !== "" && isFinite(Number(raw)) ? Number(raw) : raw;
  }
  const patch = { [key]: value };
  if (key === "target") Object.assign(patch, { features: [], view: [] });
  return patch;
}

/** POST the file (as raw bytes) to the upload endpoint; the result or {error}. */
export async function uploadFile(file) {
  try {
    const response = await fetch(`/api/upload?name=${encodeURIComponent(file.name)}`, {
      method: "POST",
      headers: { "Content-Type": file.type || "text/csv" },
      body: file,
    });
    const body = await response.json();
    return response.ok ? body : { error: body.error || `upload failed (${response.status})` };
  } catch (err) {
    return { error: `upload failed: ${err}` };
  }
}

/** Offer the uploaded table's columns: any column as the target, numeric ones as plot axes. */
export function showUpload(table) {
  $("upload-option").disabled = false;
  $("upload-info").textContent = `${table.name}: ${table.rows} rows, ${table.columns.length} columns`;
  const options = (select, columns) => {
    select.replaceChildren(...columns.map((c) => {
      const o = document.createElement("option");
      o.value = c.name;
      o.textContent = c.name;
      return o;
    }));
  };
  options($("target"), table.columns);
  $("target").value = table.columns.at(-1).name;
  const numeric = table.columns.filter((c) => c.numeric);
  options($("view-x"), numeric);
  options($("view-y"), numeric);
  $("view-x").value = numeric[0]?.name ?? "";
  $("view-y").value = numeric[1]?.name ?? "";
}
