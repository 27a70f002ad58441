// The portal can also open the chat from its own links and buttons.
document.getElementById('abrir-atendimento').addEventListener('click', function () {
  if (window.AtendeWidget) window.AtendeWidget.open();
});
