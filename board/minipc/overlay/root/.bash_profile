# On the serial console (DUOGATE_CONSOLE=1, set by the getty drop-in) root gets the duogate console menu.
[ -f ~/.bashrc ] && . ~/.bashrc
if [ "${DUOGATE_CONSOLE:-}" = 1 ] && [ -z "${DUOGATE_SHELL:-}" ]; then
  exec /usr/local/sbin/duogate-menu
fi
