# Sourced: `keep_installed PG_CONFIG DIR` saves the ai_loader files installed in
# PG_CONFIG's Postgres (library, parser program, control file, SQL scripts) into DIR and puts them back
# when the shell exits, so that a debug build installed meanwhile does not stay behind.
# Files are replaced by renaming, never rewritten in place: a server running the
# library keeps the copy it mapped.

keep_installed() {
  local pg_config=$1 dir=$2
  _KEEP_LIB=$("$pg_config" --pkglibdir)
  _KEEP_EXT=$("$pg_config" --sharedir)/extension
  _KEEP_DIR=$dir
  rm -rf "$_KEEP_DIR"
  mkdir -p "$_KEEP_DIR/lib" "$_KEEP_DIR/extension"
  if [ -f "$_KEEP_LIB/ai_loader.so" ]; then
    cp -p "$_KEEP_LIB/ai_loader.so" "$_KEEP_DIR/lib/"
    cp -p "$_KEEP_LIB/ai_loader_parse" "$_KEEP_DIR/lib/" 2>/dev/null || true
    cp -p "$_KEEP_EXT"/ai_loader.control "$_KEEP_EXT"/ai_loader--*.sql "$_KEEP_DIR/extension/" 2>/dev/null || true
  fi
  trap put_back_installed EXIT
}

put_back_installed() {
  local status=$?
  if [ -f "$_KEEP_DIR/lib/ai_loader.so" ]; then
    rm -f "$_KEEP_EXT"/ai_loader--*.sql
    local f
    for f in "$_KEEP_DIR"/extension/*; do
      [ -e "$f" ] || continue
      cp -p "$f" "$_KEEP_EXT/.$(basename "$f").tmp" && mv -f "$_KEEP_EXT/.$(basename "$f").tmp" "$_KEEP_EXT/$(basename "$f")"
    done
    for f in "$_KEEP_DIR"/lib/*; do
      cp -p "$f" "$_KEEP_LIB/.$(basename "$f").tmp" && mv -f "$_KEEP_LIB/.$(basename "$f").tmp" "$_KEEP_LIB/$(basename "$f")"
    done
    printf '\nai_loader: the build installed before the tests is back in %s\n' "$_KEEP_LIB"
  elif [ -f "$_KEEP_LIB/ai_loader.so" ]; then
    printf '\nai_loader: the tests left their DEBUG build installed in %s (none was installed before);\n' "$_KEEP_LIB"
    printf 'ai_loader: `make install` replaces it with the release build.\n'
  fi
  rm -rf "$_KEEP_DIR"
  exit $status
}
