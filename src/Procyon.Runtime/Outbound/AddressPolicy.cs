using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace Procyon.Runtime.Outbound;

/// <summary>A request the server's or the module's rules forbid (the module gets <c>HTTP_REFUSED</c>).</summary>
internal sealed class OutboundRefusedException(string message) : Exception(message);

/// <summary>
/// Where outbound requests may connect: public addresses only (no loopback, private, link-local,
/// CGNAT, multicast or reserved ones, whatever IPv6 form carries them), unless
/// <see cref="HttpOptions.AllowedHosts"/> names the host or the address. Checked on the address
/// the socket connects to, after resolving, so a name that resolves to a public address when
/// checked and a private one when used (DNS rebinding) cannot slip through.
/// </summary>
public sealed class AddressPolicy(IOptions<HttpOptions> options)
{
    private static readonly IPNetwork[] NotPublic = [.. new[]
    {
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        // IPv4-compatible (and :: and ::1), ULA, link-local, site-local, multicast, Teredo, documentation.
        "::/96", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "2001::/32", "2001:db8::/32",
    }.Select(IPNetwork.Parse)];

    /// <summary>NAT64 and 6to4 addresses carry an IPv4 address, which must be public in its turn.</summary>
    private static readonly IPNetwork Nat64 = IPNetwork.Parse("64:ff9b::/96");
    private static readonly IPNetwork SixToFour = IPNetwork.Parse("2002::/16");

    private readonly HostPattern[] _allowed = [.. options.Value.AllowedHosts.Select(HostPattern.Parse)];

    /// <summary>Whether a request to <paramref name="host"/> may connect to <paramref name="address"/>.</summary>
    public bool Allows(string host, IPAddress address) =>
        IsPublic(address) || _allowed.Any(pattern => pattern.MatchesHost(host) || pattern.MatchesAddress(address));

    /// <summary>Whether <paramref name="address"/> is an ordinary public unicast address.</summary>
    public static bool IsPublic(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            return IsPublic(address.MapToIPv4());
        }
        if (NotPublic.Any(network => network.Contains(address)))
        {
            return false;
        }
        if (Nat64.Contains(address))
        {
            return IsPublic(new IPAddress(address.GetAddressBytes()[12..]));
        }
        return !SixToFour.Contains(address) || IsPublic(new IPAddress(address.GetAddressBytes()[2..6]));
    }

    /// <summary>
    /// <see cref="SocketsHttpHandler.ConnectCallback"/>: resolves the host, keeps the addresses
    /// <see cref="Allows"/> lets through, and connects to the first that answers.
    /// </summary>
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var (host, port) = (HostPattern.Unbracket(context.DnsEndPoint.Host), context.DnsEndPoint.Port);
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken);
        var allowed = addresses.Where(address => Allows(host, address)).ToArray();
        if (addresses.Length == 0)
        {
            throw new SocketException((int)SocketError.HostNotFound);
        }
        if (allowed.Length == 0)
        {
            throw new OutboundRefusedException(
                $"{host} is {string.Join(", ", addresses.Select(a => a.ToString()))}, which is not a public address (loopback, private, link-local and the like are refused unless Procyon:Http:AllowedHosts names them)");
        }
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(allowed, port, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>An entry of an allow-list: a host name, <c>*.</c> and a domain (its subdomains), or an IP address.</summary>
internal sealed class HostPattern
{
    private readonly string? _name;
    private readonly string? _suffix;
    private readonly IPAddress? _address;

    private HostPattern(string? name, string? suffix, IPAddress? address) => (_name, _suffix, _address) = (name, suffix, address);

    public override string ToString() => _address?.ToString() ?? (_suffix is null ? _name! : "*" + _suffix);

    public static HostPattern Parse(string entry)
    {
        var text = Unbracket(entry.Trim());
        return IPAddress.TryParse(text, out var address) ? new(null, null, Normal(address))
            : text.StartsWith("*.", StringComparison.Ordinal) ? new(null, text[1..], null)
            : new(text, null, null);
    }

    /// <summary>Whether <paramref name="entry"/> is a host name, <c>*.</c> and a domain, or an IP address.</summary>
    public static bool IsPattern(string entry)
    {
        var text = Unbracket(entry.Trim());
        return IsHostOrAddress(text.StartsWith("*.", StringComparison.Ordinal) ? text[2..] : text);
    }

    public static bool IsHostOrAddress(string entry) =>
        entry.Length is > 0 and <= 253 && Uri.CheckHostName(Unbracket(entry)) is UriHostNameType.Dns or UriHostNameType.IPv4 or UriHostNameType.IPv6;

    /// <summary>Whether a request's host (a name, or an address as written in the URI) is this entry.</summary>
    public bool MatchesHost(string host)
    {
        host = Unbracket(host);
        if (_address is not null)
        {
            return IPAddress.TryParse(host, out var address) && MatchesAddress(address);
        }
        return _suffix is null
            ? string.Equals(host, _name, StringComparison.OrdinalIgnoreCase)
            : host.Length > _suffix.Length && host.EndsWith(_suffix, StringComparison.OrdinalIgnoreCase);
    }

    public bool MatchesAddress(IPAddress address) => _address is not null && _address.Equals(Normal(address));

    public static string Unbracket(string host) => host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;

    private static IPAddress Normal(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
