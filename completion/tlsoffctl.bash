# bash completion for tlsoffctl(8)                                     -*- shell-script -*-
#
# Install as /usr/share/bash-completion/completions/tlsoffctl, or source it from ~/.bashrc.
# Completes options, objects, verbs and option keywords; frontend and backend names are asked of the
# running daemon (`tlsoffctl frontend show -j`, `backend show -j`), silently and with a short timeout, so
# nothing is offered when the daemon is not reachable. File names after cert, key, ocsp, old, -batch and -s;
# network devices from /sys/class/net after dev. Self-contained: bash-completion's helpers are used when
# they are loaded, but not needed.

# Print the "name" of every object of `tlsoffctl OBJECT show -j` (OBJECT = frontend | backend).
_tlsoffctl_names()
{
    local out
    local -a cmd=("$_tlsoffctl_ctl")
    [[ -n $_tlsoffctl_sock ]] && cmd+=(-s "$_tlsoffctl_sock")
    cmd+=(-j "$1" show)
    if type -P timeout >/dev/null 2>&1; then
        out=$(timeout 2 "${cmd[@]}" 2>/dev/null </dev/null) || return 0
    else
        out=$("${cmd[@]}" 2>/dev/null </dev/null) || return 0
    fi
    [[ -n $out ]] || return 0
    if type -P jq >/dev/null 2>&1; then
        printf '%s\n' "$out" | jq -r '.[]? | .name? // empty' 2>/dev/null
    elif type -P python3 >/dev/null 2>&1; then
        printf '%s\n' "$out" | python3 -c '
import json, sys
try:
    for o in json.load(sys.stdin):
        if isinstance(o, dict) and isinstance(o.get("name"), str):
            print(o["name"])
except Exception:
    pass' 2>/dev/null
    else
        printf '%s\n' "$out" | grep -o '"name"[[:space:]]*:[[:space:]]*"[^"]*"' |
            sed 's/.*"\([^"]*\)"$/\1/'
    fi
}

# COMPREPLY = the words of $1 (one a line or blank-separated) that start with $cur.
_tlsoffctl_reply()
{
    local IFS=$' \t\n'
    # shellcheck disable=SC2207
    COMPREPLY=($(compgen -W "$1" -- "$cur"))
}

_tlsoffctl_files()
{
    if declare -F _filedir >/dev/null 2>&1; then
        _filedir
    else
        compopt -o filenames 2>/dev/null
        local IFS=$'\n'
        # shellcheck disable=SC2207
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

_tlsoffctl_devices()
{
    local d devs=''
    for d in /sys/class/net/*; do
        [[ -e $d ]] && devs+=" ${d##*/}"
    done
    _tlsoffctl_reply "$devs"
}

# Complete the keyword/value pairs that follow a command's fixed arguments.
#   $1: index in words[] of the first keyword
#   $2: keywords that may be given once
#   $3: keywords that may repeat
# The value after a keyword is completed by _tlsoffctl_value (see below).
_tlsoffctl_pairs()
{
    local first=$1 once=$2 many=$3 i kw offer=''
    if (( cword < first )); then
        return 0
    fi
    if (( (cword - first) % 2 == 1 )); then
        _tlsoffctl_value "${words[cword - 1]}"
        return 0
    fi
    local -A used=()
    for ((i = first; i < cword; i += 2)); do
        [[ -n ${words[i]} ]] && used[${words[i]}]=1
    done
    for kw in $once; do
        [[ -n ${used[$kw]} ]] || offer+=" $kw"
    done
    _tlsoffctl_reply "$offer $many"
}

# Complete the value of option keyword $1.
_tlsoffctl_value()
{
    case $1 in
        cert | key | ocsp | old | client-ca | ca)
            _tlsoffctl_files ;;
        client-verify)
            _tlsoffctl_reply "required optional" ;;
        verify)
            _tlsoffctl_reply "on off" ;;
        backend | default)
            _tlsoffctl_reply "$(_tlsoffctl_names backend)" ;;
        frontend)
            _tlsoffctl_reply "$(_tlsoffctl_names frontend)" ;;
        tls-min)
            _tlsoffctl_reply "1.2 1.3" ;;
        datapath)
            if [[ $object == conn ]]; then
                _tlsoffctl_reply "splice userspace"
            else
                _tlsoffctl_reply "auto splice userspace"
            fi ;;
        nic-offload)
            _tlsoffctl_reply "off prefer" ;;
        alpn)
            _tlsoffctl_reply "h2,http/1.1 h2 http/1.1" ;;
        balance)
            _tlsoffctl_reply "roundrobin leastconn" ;;
        proxy-protocol)
            _tlsoffctl_reply "v2" ;;
        dev)
            _tlsoffctl_devices ;;
        *)  # listen, server, timeouts, max-conns: nothing to offer
            COMPREPLY=() ;;
    esac
}

_tlsoffctl()
{
    COMPREPLY=()

    # Re-join what COMP_WORDBREAKS split at ':' (HOST:PORT, [::1]:443), so positions count real words.
    local -a words=()
    local cword=0 i j=-1 glue=0 w
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w =~ ^:+$ ]] && (( j >= 0 )); then
            words[j]+=$w
            glue=1
        elif (( glue )) && [[ -n $w ]]; then
            words[j]+=$w
            glue=0
        else
            words[++j]=$w
            glue=0
        fi
        (( i == COMP_CWORD )) && cword=$j
    done
    local cur=${words[cword]} prev=''
    (( cword > 0 )) && prev=${words[cword - 1]}

    local _tlsoffctl_ctl=${words[0]:-tlsoffctl} _tlsoffctl_sock='' batch=''
    # shellcheck disable=SC2088  # a literal "~/" typed on the command line
    [[ $_tlsoffctl_ctl == "~/"* ]] && _tlsoffctl_ctl=$HOME/${_tlsoffctl_ctl#"~/"}
    local object='' verb='' objidx=0 argi=0

    # Global options, then OBJECT, then VERB.
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            -s | -socket | --socket)
                _tlsoffctl_sock=${words[i + 1]}; ((i++)); continue ;;
            -batch | --batch)
                batch=1; ((i++)); continue ;;
            -*) # -j -p -force -h -V and their long spellings
                continue ;;
        esac
        objidx=$i
        object=${words[i]}
        break
    done

    case $prev in
        -s | -socket | --socket | -batch | --batch)
            _tlsoffctl_files
            return 0 ;;
    esac

    if [[ -z $object ]]; then
        if [[ -n $batch ]]; then
            _tlsoffctl_reply "-force -j -p -s"
        elif [[ $cur == -* ]]; then
            _tlsoffctl_reply "-j -p -s -batch -force -V --help"
        else
            _tlsoffctl_reply "frontend backend server cert conn stats status offload config tickets metrics user"
        fi
        return 0
    fi

    # The verb, and the index of the first argument after it.
    if (( cword == objidx + 1 )); then
        case $object in
            frontend | backend) _tlsoffctl_reply "add del show help" ;;
            server)             _tlsoffctl_reply "add del drain enable help" ;;
            cert)               _tlsoffctl_reply "add replace del show help" ;;
            conn)               _tlsoffctl_reply "show kill help" ;;
            offload)            _tlsoffctl_reply "show set help" ;;
            config)             _tlsoffctl_reply "dump help" ;;
            tickets)            _tlsoffctl_reply "keys help" ;;
            metrics)            _tlsoffctl_reply "listen off help" ;;
            stats | status)     ;;   # no verb, no arguments
        esac
        return 0
    fi
    verb=${words[objidx + 1]}
    argi=$((objidx + 2))        # words[argi] is the first argument after the verb
    local n=$((cword - argi))   # which argument the cursor is on (0 = the first)

    case $object/$verb in
        frontend/add)
            # NAME is new: nothing to offer for it. "plain" / "passthrough" are single words: options
            # pair up again after them, with the keywords of that kind of frontend.
            local k mode='' at=0
            for ((k = argi + 1; k < cword; k++)); do
                [[ ${words[k]} == plain || ${words[k]} == passthrough ]] && { mode=${words[k]}; at=$k; }
            done
            case $mode in
                plain) _tlsoffctl_pairs $((at + 1)) "backend idle-timeout max-conns" "" ;;
                passthrough) _tlsoffctl_pairs $((at + 1)) "default handshake-timeout idle-timeout max-conns" "sni" ;;
                *) _tlsoffctl_pairs $((argi + 1)) \
                       "listen backend alpn tls-min datapath handshake-timeout idle-timeout max-conns client-ca client-verify nic-offload" "cert key ocsp"
                   if (( (cword - argi - 1) % 2 == 0 && cword - argi > 2 )); then   # a keyword slot
                       # shellcheck disable=SC2207
                       COMPREPLY+=($(compgen -W "plain passthrough" -- "$cur"))
                   fi ;;
            esac ;;
        frontend/del | frontend/show)
            (( n == 0 )) && _tlsoffctl_reply "$(_tlsoffctl_names frontend)" ;;
        backend/add)
            # "tls" is a single word: options pair up again after it, the TLS ones offered too.
            local k at=0
            for ((k = argi + 1; k < cword; k++)); do
                [[ ${words[k]} == tls ]] && at=$k
            done
            if (( at )); then
                _tlsoffctl_pairs $((at + 1)) "balance proxy-protocol connect-timeout ca verify sni cert key" "server"
            else
                _tlsoffctl_pairs $((argi + 1)) "balance proxy-protocol connect-timeout" "server"
                if (( (cword - argi - 1) % 2 == 0 && cword - argi > 2 )); then   # a keyword slot
                    # shellcheck disable=SC2207
                    COMPREPLY+=($(compgen -W "tls" -- "$cur"))
                fi
            fi ;;
        backend/del | backend/show)
            (( n == 0 )) && _tlsoffctl_reply "$(_tlsoffctl_names backend)" ;;
        server/add | server/del | server/drain | server/enable)
            (( n == 0 )) && _tlsoffctl_reply "$(_tlsoffctl_names backend)" ;;
        cert/add)
            if (( n == 0 )); then
                _tlsoffctl_reply "$(_tlsoffctl_names frontend)"
            else
                _tlsoffctl_pairs $((argi + 1)) "cert key ocsp" ""
            fi ;;
        cert/replace)
            if (( n == 0 )); then
                _tlsoffctl_reply "$(_tlsoffctl_names frontend)"
            else
                _tlsoffctl_pairs $((argi + 1)) "cert key ocsp old" ""
            fi ;;
        cert/del)
            if (( n == 0 )); then
                _tlsoffctl_reply "$(_tlsoffctl_names frontend)"
            elif (( n == 1 )); then
                _tlsoffctl_files
            fi ;;
        cert/show)
            (( n == 0 )) && _tlsoffctl_reply "$(_tlsoffctl_names frontend)" ;;
        conn/show)
            _tlsoffctl_pairs "$argi" "frontend backend datapath" "" ;;
        offload/show)
            _tlsoffctl_pairs "$argi" "dev" "" ;;
        offload/set)
            case $n in
                0) _tlsoffctl_reply "dev" ;;
                1) [[ $prev == dev ]] && _tlsoffctl_devices ;;
                2) _tlsoffctl_reply "tls-hw-tx tls-hw-rx tls-hw-record" ;;
                3) _tlsoffctl_reply "on off" ;;
            esac ;;
        tickets/keys)
            (( n == 0 )) && _tlsoffctl_files ;;
        *)  # conn kill ID, config dump, stats, status, metrics listen ADDR:PORT, help: nothing to offer
            ;;
    esac
    return 0
}

complete -F _tlsoffctl tlsoffctl
