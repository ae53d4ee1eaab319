// After the page has loaded: an image that did not load gets a visible note in
// place of a broken icon, and <body data-images="loaded/total"> records the count
// (the browser test reads it).
window.addEventListener("load", function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {
    var img = images[i];
    if (img.complete && img.naturalWidth > 0) {
      loaded++;
    } else {
      var note = document.createElement("p");
      note.className = "notice";
      note.textContent = "This image could not be loaded: " + img.alt;
      img.replaceWith(note);
    }
  }
  document.body.setAttribute("data-images", loaded + "/" + images.length);
});
