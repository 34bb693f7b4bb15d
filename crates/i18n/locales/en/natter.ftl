# natter's English catalogue: every text natter says to a person.
# The other catalogues have the same messages with the same $placeholders (a test checks it).
# Names, message text and timestamps are never translated. Markers a layout adds around a text
# ("* ", "! ", "→ ") are not part of it. See docs/TRANSLATING.md.

## Connecting and leaving (line client and full-screen client)

prompt-name = Your name:
connected = connected to { $server } as { $name }. Type to chat; /help lists commands; /quit or exit leaves.
connection-lost = connection lost; reconnecting…
reconnected-catching-up = reconnected; catching up on what you missed
reconnected-caught-up = reconnected; caught up on what you missed
reconnecting-attempt = reconnecting, attempt { $attempt }
sending = { $count } sending…
bye = bye
server-shutting-down = the server is shutting down
not-sent = not sent ({ $reason }): { $text }
not-sent-unconfirmed = not sent (the server never confirmed it): { $text }
no-earlier-messages = no earlier messages in { $where }
private-messages = private messages
gave-up = gave up: { $reason }
gave-up-unreachable = could not reach { $server } after { $attempts ->
    [one] 1 attempt
   *[other] { $attempts } attempts
}
still-sending = still sending { $list }; Ctrl-C again to quit anyway (unconfirmed messages are lost)

## Presence. $where is " #room", or nothing for the lobby in plain-text mode.

presence-joined = { $name } joined{ $where }
presence-you-joined = you joined{ $where }
presence-left = { $name } left{ $where }
presence-left-why = { $name } left{ $where } ({ $why })
presence-reconnected = { $name } reconnected to{ $where }
left-reason = { $reason ->
    [disconnect] connection dropped
    [too_slow] too slow to read
    [timeout] timed out
    [excess_flood] flooding
   *[other] { $reason }
}

## Lists

members-count = { $room } has { $count ->
    [one] 1 member
   *[other] { $count } members
}; /who { $room } lists them
members-in = in { $room }: { $names }
rooms-list = rooms: { $list }
members-here = { $count } here

## Messages: "you" for yourself in "[time] you → bob: text" and "[time] bob → you: text"

you = you

## Commands and /help

usage = usage: { $usage }
unknown-command = unknown command { $command }; /help lists them
help-intro = Type a line to say it in { $room } (your current room; /join changes it). Commands:
usage-msg = /msg NAME TEXT
usage-join = /join ROOM
usage-join-one-word = /join ROOM (one word: room names have no spaces, e.g. /join my-room)
usage-leave = /leave [ROOM]
usage-who = /who [ROOM]
usage-lang = /lang en|zh-CN
usage-rooms = /rooms
usage-history = /history
usage-help = /help
usage-clear = /clear
usage-f2 = F2
usage-tab = Tab
help-msg = send a private message
help-join = join (or create) a room and make it current
help-leave = leave a room (default: the current one)
help-who = list a room's members
help-rooms = list rooms
help-history = show older messages of the current room
help-help = this list
help-lang = switch the language natter speaks to you
help-quit = leave the chat
help-slash = say text that starts with '/'
help-quit-keys = /quit or exit
help-slash-keys = //text
help-clear = clear this conversation's window
help-switch = switch conversation
help-switch-keys = Alt-1..9 Ctrl-N/P
help-scroll = scroll; End follows live messages
help-scroll-keys = PgUp/PgDn, wheel
help-members = show or hide the member list
help-complete = complete a name or command
lang-switched = natter speaks English to you now
lang-unknown = natter speaks en and zh-CN; { $lang } is not one of them

## Full-screen client

status-connected = connected
status-reconnecting = reconnecting in { $secs }s
status-offline = offline: { $why }
status-left = left
status-scrolled = scrolled back (End: follow)
msg-sending = …sending
msg-not-sent = ✗ not sent: { $reason }
paste-confirm = Send the pasted { $count } lines as one message?  Enter: send · Esc: cancel

## Plain-text mode (nc, telnet)

plain-greeting = This is a natter chat server. Type your name and press Enter (natter's own client: natter join).
plain-welcome = Welcome, { $name }! Type a message and press Enter. /help lists commands; exit leaves.
plain-type-another-name = Type another name:
plain-not-utf8 = lines must be UTF-8 text
plain-clear = /clear is for natter's own clients
plain-bye = Bye!
http-not-a-web-server = This is a natter chat server, not a web server: connect with `natter join` or `nc HOST PORT`.
plain-shutdown = The server is shutting down. Bye!

## Errors of the command line and the connection

error-connect = cannot connect to { $server }: { $why }
error-connect-refused = nothing is listening there; is `natter serve` running at that address?
error-connect-address = { $why } (use HOST:PORT, e.g. 127.0.0.1:5500)
error-name-refused = the server refused the name: { $why }
error-no-name = no name given (use --name NAME)
error-connection-lost = the connection to the server was lost
error-no-answer = { $server } did not answer within { $secs } s; is a natter server (`natter serve`) running there?
error-interrupted = interrupted
error-not-natter = { $server } answered, but not as a natter server; check the address and port
error-unconfirmed = { $count ->
    [one] 1 message was
   *[other] { $count } messages were
} not confirmed by the server
error-refused = the server refused { $count ->
    [one] 1 message
   *[other] { $count } messages
}: { $first }
error-terminal = terminal error: { $why }
error-stray-words = unexpected { $words }: give a name with --name (natter join --name { $first }) and a server with --server HOST:PORT

## Error frames, by code (PROTOCOL.md §5). Their placeholders are the frame's "args".

error-bad_frame = { $reason ->
    [utf8] frame is not valid UTF-8
    [json] frame is not valid JSON: { $detail }
    [object] a frame must be a JSON object
    [no_type] frame has no "type" string
   *[fields] bad { $kind } frame: { $detail }
}
error-frame_too_large = frame longer than { $max } bytes; skipped
error-unknown_type = unknown frame type { $kind }
error-not_registered = send hello first
error-already_registered = you are already registered as { $name }
error-unsupported_version = this server speaks protocol version { $supported }
error-invalid_name = { $reason ->
    [empty] a name cannot be empty
    [too_long] a name has at most { $max } characters
   *[bad_char] a name may contain only letters, digits, '_', '-' and '.' (found { $char })
    [mixed_scripts] a name may not mix letters of scripts that are not written together (such as a Cyrillic а among Latin letters)
}
error-name_owned = { $name } belongs to someone who proved it is theirs; pick another name, or sign in from the device that owns it
error-bad_proof = the proof of your name did not match; your client's key may have changed
error-bad_password = wrong password (or none is set for that name); the next try must wait { $try_again_in } s
error-try_again_later = { $what ->
    [claims] too many new names from your address; try again in { $try_again_in } s
   *[passwords] too many wrong passwords from your address; try again in { $try_again_in } s
}
error-insecure = a password may only cross TLS or a connection from the server's own machine; it was not read
error-weak_password = { $reason ->
    [too_long] a password has at most { $max } bytes
   *[too_short] a password has at least { $min } characters
}
error-tls_required = this server takes only TLS connections from other machines: connect with natter join (which uses TLS), or openssl s_client
error-banned = { $what ->
    [address] connections from your address are banned from this server
   *[name] the name { $name } is banned from this server
}
error-blocked = { $name } does not take your private messages
error-muted = { $until ->
    [none] you have no voice in { $room }: it is moderated
   *[other] you are muted in { $room } until { $until }
}
error-invite_only = { $room } is invite-only; ask one of its operators to /invite you
error-name_taken = the name { $name } is taken
error-no_such_user = nobody called { $name } is here
error-not_in_room = you are not in { $room }
error-invalid_room = bad room name { $room }: { $reason ->
    [empty] a name cannot be empty
    [too_long] a name has at most { $max } characters
   *[bad_char] a name may contain only letters, digits, '_', '-' and '.' (found { $char })
    [mixed_scripts] a name may not mix letters of scripts that are not written together (such as a Cyrillic а among Latin letters)
}
error-invalid_text = { $reason ->
    [empty] message text is empty
    [too_long] message text is longer than { $max } bytes
   *[control] message text contains a control character ({ $char }); only newline and tab are allowed
}
error-too_slow = you are not reading; disconnecting
error-server_error = { $what ->
    [store] the server could not store your message; it was not sent
    [full] the server cannot store messages right now; it was not sent
    [history] the server could not read history
    [rooms] the server cannot look up your rooms right now; try again later
   *[other] the server could not do that; try again
}
error-history_gap = history starts at seq { $oldest }; messages after { $after } before it are gone
error-excess_flood = { $what ->
    [before_hello] too many frames before hello
   *[other] you are sending too much, too fast
}
error-registration_timeout = no hello in time
error-idle_timeout = nothing heard from you for too long
error-server_full = the server is full; try again later
error-too_many_connections = too many connections from your address
error-too_many_rooms = you are in { $count } rooms, the most this server allows; /leave one first

## `natter join --help`

help-cli-join = Join a chat server
help-cli-join-server = Server to join, as HOST:PORT (HOST alone means port 5500)
help-cli-join-name = Your name (asked for when missing)
help-cli-join-plain = Plain line mode even on a terminal
help-cli-join-timestamps = Timestamps in the full-screen client: short [HH:MM:SS] or full [YYYY-MM-DD HH:MM:SS]
help-cli-join-bell = Ring the terminal bell when someone mentions your name
help-cli-join-timeout = Seconds to wait for the server to accept and answer before giving up (or retrying)
help-cli-join-lang = Language of everything natter says: en or zh-CN. Default: from LC_ALL, LC_MESSAGES or LANG
key-unusable = cannot keep your key in { $dir } ({ $why }); joining as a guest, so your name is not kept for you
help-cli-join-data_dir = Where the key that makes your name yours is kept (default: ~/.local/share/natter)
help-cli-join-guest = Join as a guest: no key, so the name is not kept for you (and cannot be one somebody owns)
key-not-a-key = { $path } is not a natter key
password-set = your password is set: with it you can sign in as yourself from another device
plain-type-your-name = Type your name:
plain-type-password = If it is yours, type its password (an empty line: another name):
usage-password = /password
usage-password-nc = /password NEW-PASSWORD
help-password = set a password for your name, to sign in from other devices
prompt-password = Password of { $name } (empty: another name):
prompt-new-password = New password (nothing is shown as you type):
prompt-new-password-again = The same again:
password-mismatch = the two passwords differ; nothing was changed
error-cert-changed = { $server } presents another certificate than before: it was { $old }, now it is { $new }. Someone may be intercepting the connection. If the server's operator changed the certificate, delete the line of { $server } from { $file } (or connect with --fingerprint { $new }) and connect again
error-not-pinned = { $server } presents the certificate { $got }, not the pinned { $pinned }; not connecting
error-tls = cannot talk TLS with { $server } ({ $why }); if it is an older natter, --no-tls connects in plain text (anyone on the network can read it)
first-use = first connection to { $server } over TLS: its certificate is { $fingerprint } (remembered; ask the server's operator whether that is what `natter serve` printed)
help-cli-join-no_tls = Plain text, no TLS (anyone on the network can read it; for servers that do not speak TLS)
help-cli-join-fingerprint = Trust only the server certificate with this fingerprint (SHA256:…, as natter serve prints it)
tls-no-certificate = the server showed no certificate
error-forbidden = { $what ->
    [block] only the owner of a name can block others (guests cannot)
    [file] only members of { $room } can download its files; /join it first
    [private_file] only the two people of a private conversation can download its files
   *[other] you may not do that here
}
usage-block = /block NAME
help-block = refuse someone's private messages (/unblock NAME takes them again)
usage-forget-me = /forget-me
help-forget-me = forget your name and your private history on this server
forget-me-confirm = this forgets your name and deletes your private messages on this server for good; type /forget-me again to do it
forgotten = your name is nobody's now and your private history is deleted; you are a guest
blocked-on = you no longer get private messages from { $name }
blocked-off = you get private messages from { $name } again
room-event = { $kind ->
    [op] made { $name } an operator
    [deop] made { $name } no longer an operator
    [voice] gave { $name } a voice
    [devoice] took { $name }'s voice
    [kick] kicked { $name }
    [kick_why] kicked { $name } ({ $text })
    [ban] banned { $name }
    [unban] lifted the ban of { $name }
    [mute] muted { $name } for { $minutes } min
    [unmute] unmuted { $name }
    [invite] invited { $name }
    [topic] set the topic: { $text }
    [invite_only] made the room invite-only: { $on }
    [moderated] made the room moderated: { $on }
   *[other] did { $kind } { $name }
}
topic-is = the topic of { $room }: { $topic }
on = on
off = off
usage-moderate = /kick NAME …
help-moderate = room operators: /op /deop /voice /devoice /kick /ban /unban /mute /unmute /invite NAME, /topic TEXT, /invite-only on|off, /moderated on|off
new-while-away = { $count ->
    [one] 1 private message came while you were away:
   *[other] { $count } private messages came while you were away:
}

## Sharing files (issue 13)

file-shared = shared { $file } ({ $size }) — { $get } { $id }
file-shared-expired = shared { $file } ({ $size }) — expired
error-file_too_big = files over { $max } cannot be shared on this server
error-quota_exceeded = { $what ->
    [user] sharing this would pass your quota of { $limit }; files you shared expire in time
   *[server] the server's file storage is full ({ $limit }); try again when older files have expired
}
error-storage_full = the server's disk has no room for this file; it was not stored (chat goes on)
error-no_such_file = there is no shared file { $file }
error-file_expired = file { $file } has expired; the server no longer keeps it
error-bad_checksum = the file arrived different from what was offered (SHA-256 mismatch); the upload was discarded
error-unknown_transfer = this transfer has expired; ask for it again
error-files_off = this server does not keep files
usage-send = /send PATH
send-nc = files are shared with natter's own client: natter send FILE --room ROOM (and fetched with natter get N)
help-send = share a file with this conversation (Tab completes the path)
usage-get = /get N
help-get = download shared file N into your downloads folder
usage-cancel = /cancel
help-cancel = stop the transfers in progress
send-cannot-read = cannot read { $path }: { $why }
send-not-a-file = { $path } is not a file
transfer-up = ↑ { $file } { $percent }% { $rate }/s { $eta }
transfer-down = ↓ { $file } { $percent }% { $rate }/s { $eta }
transfer-eta = { $secs ->
    [0] almost done
   *[other] { $secs } s left
}
transfer-checking = checking { $file }…
transfer-resuming = { $file }: the connection dropped; resuming from { $done }
upload-done = { $file } is shared: /get { $id }
download-done = saved { $path } ({ $size }), verified
download-corrupt = { $file } arrived damaged (its SHA-256 does not match); deleted
transfer-failed = { $file }: { $why }
transfer-cancelled = cancelled { $file }
transfer-none = no transfers in progress
downloads-unusable = cannot write into { $dir }: { $why }
help-cli-send = Share files with a room or a person (resumes an interrupted upload when run again)
help-cli-send-files = The files to share
help-cli-send-to = Share privately with this person
help-cli-send-room = Share with this room (default: lobby)
help-cli-get = Download a shared file, verified, resuming what an earlier run left
help-cli-get-id = The file's number, as its message shows it (/get 17)
help-cli-get-output = Where to write it (default: into the downloads directory, never overwriting)
help-cli-join-downloads = Where downloads go (default: your Downloads folder)

## The browser client (issue 14)

web-name = Name
web-password = Password
web-password-hint = (if the name is yours)
web-join = Join
web-message = Message — /help for commands
web-send = Send
web-sending = sending…
web-not-sent = not sent: { $reason }
web-reconnecting = reconnecting in { $secs } s…
web-connecting = connecting…
web-members = { $count } in { $room }
web-help = /msg NAME TEXT · /join ROOM · /leave · /who · /quit · Tab completes names · //text says /text
web-unknown-command = unknown command { $command }
web-usage-msg = /msg NAME TEXT
web-file = shared { $file } ({ $size }) — /get { $id } in natter's client
web-file-expired = shared { $file } ({ $size }) — expired
web-conversations = Conversations
web-messages = Messages
web-attach = Share a file
web-download = download
web-uploading = sharing { $file }…
web-upload-failed = { $file } was not shared: { $why }
web-language = Language
web-language-auto = as the browser
web-offline = offline: waiting for the network to come back

## IRC front end (natter serve --irc): the texts of numerics and errors
irc-not-enough-params = Not enough parameters
irc-no-such-channel = No such channel
irc-no-such-nick = No such nick/channel
irc-end-of-names = End of /NAMES list
irc-not-on-channel = You're not on that channel
irc-no-nickname = No nickname given
irc-end-of-whois = End of /WHOIS list
irc-your-host = Your host is { $server }, running { $version }
irc-no-reregister = You may not reregister
irc-not-registered = You have not registered
irc-now-away = You have been marked as being away
irc-back = You are no longer marked as being away
irc-welcome = Welcome to natter, { $nick }
irc-list-header = Users  Name
irc-unknown-command = Unknown command
irc-unknown-mode-flag = Unknown MODE flag
irc-created = This server was created when it started
irc-shutting-down = Server shutting down
irc-sendq = SendQ exceeded
irc-quit = Quit: { $text }
irc-ping-timeout = Ping timeout
irc-no-topic = No topic is set
irc-no-text = No text to send
irc-no-recipient = No recipient given ({ $command })
irc-no-origin = No origin specified
irc-no-motd = MOTD File is missing
irc-motd-start = - { $server } Message of the day -
irc-motd-end = End of /MOTD command
irc-invalid-cap = Invalid CAP command
irc-excess-flood = Excess Flood
irc-erroneous-nick = Erroneous nickname
irc-end-of-bans = End of channel ban list
irc-end-of-who = End of WHO list
irc-end-of-list = End of /LIST
irc-local-users = Current local users { $users }, max { $max }
irc-global-users = Current global users { $users }, max { $max }
irc-connection-closed = Connection closed
irc-closing-link = Closing link
irc-cannot-send = Cannot send to channel (you are not in it)
irc-no-nick-change = Cannot change nickname: a natter name stays for the whole connection
irc-no-mode-for-others = Can't change mode for other users
irc-isupport = are supported by this server
irc-lusers-users = There are { $users } users and 0 invisible on 1 servers
irc-lusers-ops = operator(s) online
irc-lusers-channels = channels formed
irc-lusers-me = I have { $users } clients and 0 servers
irc-big-room = { $count } members; joins and parts are not shown in rooms this big (WHO { $channel } lists everyone)
irc-logged-in-as = is logged in as
irc-version = natter chat server
irc-unknown-mode-char = is unknown mode char to me
irc-sasl-already = You have already authenticated
irc-sasl-aborted = SASL authentication aborted
irc-sasl-mechanisms = are the available SASL mechanisms
irc-sasl-failed = SASL authentication failed
irc-sasl-logged-in = You are now logged in as { $name }
irc-sasl-ok = SASL authentication successful
irc-chathistory-subcommand = Unknown subcommand
irc-chathistory-ref = Invalid message reference
irc-chathistory-limit = Invalid limit
irc-input-too-long = Input line was too long
