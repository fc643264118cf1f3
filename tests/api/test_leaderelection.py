"""Leader election through a real Lease: one leader at a time, takeover after expiry or release,
work stopped (not crashed) when the lease is lost."""

from __future__ import annotations

import asyncio

from provisioner.components.api.leaderelection import LeaderElector


async def until(check, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.05)


def fast(client, name, ident, work, stopped=None):
    return LeaderElector(client, name, identity=ident, lease_duration=2, renew_deadline=1.5, retry_period=0.2,
                         on_started_leading=work, on_stopped_leading=stopped)


def test_one_leader_then_the_standby_takes_over_when_the_leader_releases(make_client, ns_name):
    async def main():
        async with make_client() as client:
            working: list[str] = []

            def worker(ident):
                async def work():
                    working.append(ident)
                    await asyncio.Event().wait()
                return work
            a = fast(client, ns_name, "host-a_1", worker("a"))
            b = fast(client, ns_name, "host-b_2", worker("b"))
            ta = asyncio.ensure_future(a.run())
            await until(lambda: working == ["a"])
            tb = asyncio.ensure_future(b.run())
            await until(lambda: b.observed_holder == "host-a_1")
            await asyncio.sleep(0.6)  # several of b's retry periods: it must not lead meanwhile
            assert working == ["a"] and not b.leading
            lease = await client.get("coordination.k8s.io", "v1", "leases", ns_name, "kube-system")
            assert lease["spec"]["holderIdentity"] == "host-a_1"
            assert lease["spec"]["leaseDurationSeconds"] == 2
            assert lease["spec"]["leaseTransitions"] == 0
            assert lease["spec"]["renewTime"].endswith("Z") and "." in lease["spec"]["renewTime"]

            ta.cancel()  # a clean shutdown releases the lease
            await asyncio.gather(ta, return_exceptions=True)
            await until(lambda: working == ["a", "b"])
            lease = await client.get("coordination.k8s.io", "v1", "leases", ns_name, "kube-system")
            assert lease["spec"]["holderIdentity"] == "host-b_2"
            assert lease["spec"]["leaseTransitions"] == 1
            tb.cancel()
            await asyncio.gather(tb, return_exceptions=True)
    asyncio.run(main())


def test_losing_the_lease_stops_the_work_and_the_elector_campaigns_again(make_client, ns_name):
    async def main():
        async with make_client() as client:
            events: list[str] = []

            async def work():
                events.append("started")
                try:
                    await asyncio.Event().wait()
                finally:
                    events.append("work cancelled")
            a = fast(client, ns_name, "host-a_1", work, stopped=lambda: events.append("stopped"))
            ta = asyncio.ensure_future(a.run())
            await until(lambda: events == ["started"])
            # another holder steals the lease (as after a partition): a's renewals now fail
            lease = await client.get("coordination.k8s.io", "v1", "leases", ns_name, "kube-system")
            lease["spec"]["holderIdentity"] = "thief_9"
            await client.replace("coordination.k8s.io", "v1", "leases", lease, "kube-system")
            await until(lambda: "stopped" in events, timeout=10)
            assert events[:3] == ["started", "work cancelled", "stopped"]
            assert not ta.done()  # no crash: it waits for the lease
            # the thief never renews: after the lease duration, a leads again
            await until(lambda: events.count("started") == 2, timeout=15)
            ta.cancel()
            await asyncio.gather(ta, return_exceptions=True)
    asyncio.run(main())


def test_an_api_server_outage_longer_than_the_renew_deadline_stops_the_work_until_it_returns(tmp_path):
    import subprocess

    from provisioner.components.api import kubeconfig
    from provisioner.components.api.client import Client
    from provisioner.dev import die_with_parent
    from tests.conftest import dev_cluster

    cluster = dev_cluster(tmp_path / "cluster")
    cluster.start()

    async def main():
        async with Client(kubeconfig.load(str(cluster.kubeconfig))) as client:
            events: list[str] = []

            async def work():
                events.append("started")
                try:
                    await asyncio.Event().wait()
                finally:
                    events.append("stopped")
            elector = fast(client, "outage", "host-a_1", work)
            task = asyncio.ensure_future(elector.run())
            await until(lambda: events == ["started"])
            api = cluster.procs[1]
            api.terminate()
            await asyncio.get_running_loop().run_in_executor(None, api.wait, 15)
            await until(lambda: events == ["started", "stopped"], timeout=15)  # no renewals: it stops acting
            assert not task.done()  # and waits rather than crashing
            cluster.procs[1] = subprocess.Popen(cluster.apiserver_command(cluster.api_port),
                                                stdout=open(cluster.root / "logs" / "apiserver.log", "ab"),
                                                stderr=subprocess.STDOUT, preexec_fn=die_with_parent())
            await until(lambda: events.count("started") == 2, timeout=30)  # back: it leads again
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    try:
        asyncio.run(main())
    finally:
        cluster.stop()
