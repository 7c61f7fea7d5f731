namespace Supervisor.Arbitration;

/// <summary>SIGTTIN / SIGTTOU: one worker more or fewer, never fewer than one.</summary>
internal sealed partial class Arbiter
{
    private int _deferredScaling;

    private void Scale(int change)
    {
        if (_reload is not null)
        {
            // The new generation is being booted for the current slots; resize once it is done.
            _deferredScaling += change;
            _log.Information("A reload is running: the number of workers changes by {Change} once it has ended", _deferredScaling.ToString("+0;-0;0", System.Globalization.CultureInfo.InvariantCulture));
            return;
        }
        if (change > 0)
        {
            _slots.Add(new WorkerSlot(_slots.Count));
            _log.Information("Number of workers: {From} -> {To}", _slots.Count - 1, _slots.Count);
            StartMissingWorkers();
            return;
        }
        if (_slots.Count == 1)
        {
            _log.Warning("Not removing the last worker: at least one must run");
            return;
        }
        var removed = _slots[^1];
        _slots.RemoveAt(_slots.Count - 1);
        _log.Information("Number of workers: {From} -> {To}", _slots.Count + 1, _slots.Count);
        foreach (var worker in _workers.Where(w => w.Slot == removed.Index).ToList())
        {
            Retire(worker, "fewer workers (SIGTTOU)");
        }
        CommitRotation();
    }

    private void ApplyDeferredScaling()
    {
        var change = _deferredScaling;
        _deferredScaling = 0;
        for (var i = 0; i < Math.Abs(change); i++)
        {
            Scale(Math.Sign(change));
        }
    }
}
