using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace Supervisor.Proxy;

/// <summary>
/// The front's own DataProtection key ring, kept in memory. YARP's AddReverseProxy brings DataProtection
/// along, and its hosted service makes a key at start although the front protects nothing (its affinity
/// cookie is a hash, not a protected payload); left to the framework's default, that key went to
/// ~/.aspnet/DataProtection-Keys, or to a relative .aspnet/ in the working directory when HOME was relative.
/// The workers' shared ring is <see cref="Workers.SharedKeyRing"/>'s business, not this one's.
/// </summary>
internal sealed class InMemoryKeyRepository : IXmlRepository
{
    private readonly Lock _lock = new();
    private readonly List<XElement> _elements = [];

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        lock (_lock)
        {
            return [.. _elements.Select(element => new XElement(element))];
        }
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        lock (_lock)
        {
            _elements.Add(new XElement(element));
        }
    }
}
