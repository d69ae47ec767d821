# On the serial console and the first VT (DUOGATE_CONSOLE=1, set by their getty drop-ins) root gets the duogate console.
[ -f ~/.bashrc ] && . ~/.bashrc
if [ "${DUOGATE_CONSOLE:-}" = 1 ] && [ -z "${DUOGATE_SHELL:-}" ]; then
  exec /usr/local/sbin/duogate-menu
fi
