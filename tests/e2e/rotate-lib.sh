# Key rotation steps shared by nginx-rotate.sh and httpd-rotate.sh (sourced after lib.sh).
#
# The trick that avoids failed handshakes: workers of the old generation still hold the old
# certificate and sign with the old key id until they exit, so the token holds both keys while the
# server reloads: the old id and a new id in the same token. This needs the token to keep its slot id
# when it is re-provisioned, and a second token label cannot stand in: libp11 0.4.12 lists the slots
# once per process, so a server's master (nginx) or parent (Apache) never sees a slot that appeared
# after its first key load; it only finds new keys under a slot it already knows.

ROT_CLIENTS=4

# rotation_start PORT OLD NEW: client loops verifying against both certificates' trust anchors.
rotation_start() {
        ROT_OLD_FP=$(fp_of "$(cert_of "$2")")
        ROT_NEW_FP=$(fp_of "$(cert_of "$3")")
        cat "$(ca_of "$2")" "$(ca_of "$3")" >"$T/rotation-ca.pem"
        start_clients "$ROT_CLIENTS" "$1" "$T/rotation-ca.pem" 240
        wait_clients_progress 20
        ok "$ROT_CLIENTS client loops run handshakes against the server ($(client_count '^ok ') so far)"
}

# rotation_add_new_key LABEL OLD_ID OLD NEW_ID NEW: re-provision the token with the old key and the new
# one; the running workers keep signing with the old id.
rotation_add_new_key() {
        local i n=0 bad=0
        client_marks
        provision_keys "$1" --replace "$2" "$3" "$4" "$5"
        wait_clients_progress 20
        for ((i = 0; i < ROT_CLIENTS; i++)); do
                n=$((n + $(client_since "$i" | grep -c "^ok $ROT_OLD_FP\$" || true)))
                bad=$((bad + $(client_since "$i" | grep -c "^FAIL " || true)))
        done
        ((bad == 0)) || fail "$bad handshakes failed after the token was re-provisioned with both keys"
        ((n > 0)) || fail "no handshake with the old certificate succeeded after the token was re-provisioned"
        ok "token '$1' re-provisioned with id $2 ($3) and id $4 ($5): the running workers still sign with id $2 ($n handshakes)"
}

# client_marks: remember where each client log stands.
client_marks() {
        local i
        ROT_MARK=()
        for ((i = 0; i < ROT_CLIENTS; i++)); do
                ROT_MARK+=("$(wc -l <"$T/client.$i")")
        done
}

# client_since I: the lines client I logged since client_marks, but the first (that handshake may have
# been in flight at the mark).
client_since() {
        tail -n +"$((ROT_MARK[$1] + 2))" "$T/client.$1"
}

# rotation_switched: call once the old workers are gone. Remembers where each client log stands: any
# handshake logged after that (but the one that may have been in flight) must show the new certificate.
rotation_switched() {
        client_marks
        ROT_SWITCH_MARK=("${ROT_MARK[@]}")
        wait_clients_progress 20
}

# rotation_drop_old_key LABEL NEW_ID NEW: re-provision the token with the new key only.
rotation_drop_old_key() {
        provision_keys "$1" --replace "$2" "$3"
        wait_clients_progress 20
        ok "token '$1' re-provisioned with id $2 ($3) only: the old key is gone"
}

# rotation_finish: stop the loops; no handshake failed, both certificates were served, and after the
# switch only the new one.
rotation_finish() {
        local total failed old new i f stale=0
        stop_clients
        total=$(client_count '^(ok|FAIL) ')
        failed=$(client_count '^FAIL ')
        old=$(client_count "^ok $ROT_OLD_FP\$")
        new=$(client_count "^ok $ROT_NEW_FP\$")
        if ((failed > 0)); then
                for f in "$T"/client.*.fail.*; do
                        echo "--- $f ---" >&2
                        tail -n 20 "$f" >&2
                        break
                done
                fail "$failed of $total handshakes failed during the rotation"
        fi
        ((old + new == total)) || fail "$((total - old - new)) of $total handshakes served an unexpected certificate"
        ((old > 0 && new > 0)) || fail "the loops saw $old old and $new new certificates"
        ROT_MARK=("${ROT_SWITCH_MARK[@]}")
        for ((i = 0; i < ROT_CLIENTS; i++)); do
                stale=$((stale + $(client_since "$i" | grep -vc "^ok $ROT_NEW_FP\$" || true)))
        done
        ((stale == 0)) || fail "$stale handshakes after the old workers exited did not serve the new certificate"
        ok "rotation: $total handshakes in $ROT_CLIENTS loops, 0 failed ($old old certificate, $new new; only new after the switch)"
}
