// Configure MathJax 3 for notebook math ($...$ and $$...$$), then load it from this folder.
window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]], processEscapes: true},
};
(function () {
  var here = document.currentScript.src.replace(/[^\/]*$/, "");
  var script = document.createElement("script");
  script.src = here + "tex-chtml.js";
  document.head.appendChild(script);
})();
